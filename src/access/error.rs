//! The one error type of the access module, shaped after WorkMail's exceptions so the
//! admin API can answer with the exception name a WorkMail client expects.

/// Why an access-module operation was refused.
///
/// Each variant maps 1:1 to a WorkMail exception (see [`AccessError::aws_type`]); the
/// message names the offending field but never echoes caller input, so it is safe to
/// return to a client verbatim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Input violates a documented constraint (length, pattern, enum, combination).
    #[error("{0}")]
    InvalidParameter(String),
    /// A per-organization count limit (rules, roles) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// An impersonation role (or other owned resource) does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// A user named by identifier does not exist in the organization.
    #[error("{0}")]
    EntityNotFound(String),
    /// A user exists but is not in a usable state (disabled).
    #[error("{0}")]
    EntityState(String),
    /// The organization is unknown to the access engine.
    #[error("{0}")]
    OrganizationNotFound(String),
    /// Persistence failed; in-memory state was left unchanged.
    #[error("access store: {0}")]
    Backend(String),
}

impl AccessError {
    /// The WorkMail exception name (`__type` of an awsJson1.1 error body).
    ///
    /// `Backend` has no WorkMail counterpart; it becomes AWS's generic
    /// `InternalFailure` (a server fault, not the caller's).
    pub fn aws_type(&self) -> &'static str {
        match self {
            AccessError::InvalidParameter(_) => "InvalidParameterException",
            AccessError::LimitExceeded(_) => "LimitExceededException",
            AccessError::ResourceNotFound(_) => "ResourceNotFoundException",
            AccessError::EntityNotFound(_) => "EntityNotFoundException",
            AccessError::EntityState(_) => "EntityStateException",
            AccessError::OrganizationNotFound(_) => "OrganizationNotFoundException",
            AccessError::Backend(_) => "InternalFailure",
        }
    }

    /// HTTP status for the admin API: every WorkMail exception is a 400 client error;
    /// only a persistence failure is the server's fault.
    pub fn http_status(&self) -> u16 {
        match self {
            AccessError::Backend(_) => 500,
            _ => 400,
        }
    }
}

/// Shorthand used by validators.
pub(super) fn invalid(msg: impl Into<String>) -> AccessError {
    AccessError::InvalidParameter(msg.into())
}
