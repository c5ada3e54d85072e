//! The directory's error type: one variant per WorkMail exception, so the admin
//! API can answer with the exact `__type` a WorkMail SDK client expects.

/// Why a directory operation was refused. Each variant carries a human message
/// and maps 1:1 to a WorkMail exception name via [`DirectoryError::aws_type`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The user, group or resource named by an identifier is not in the organization.
    #[error("entity not found: {0}")]
    EntityNotFound(String),
    /// The entity is not in the state the operation needs (e.g. deleting an ENABLED user).
    #[error("entity state: {0}")]
    EntityState(String),
    /// An input violates a format, length or enum restriction.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// No organization has that id.
    #[error("organization not found: {0}")]
    OrganizationNotFound(String),
    /// The organization exists but is not Active.
    #[error("organization state: {0}")]
    OrganizationState(String),
    /// The name is already taken by another entity of the same kind (or another org alias).
    #[error("name not available: {0}")]
    NameAvailability(String),
    /// The email address already belongs to another user, group or resource.
    #[error("email address in use: {0}")]
    EmailAddressInUse(String),
    /// The address's domain is not a mail domain of the organization.
    #[error("mail domain not found: {0}")]
    MailDomainNotFound(String),
    /// The domain is still used (by an address, as default, or by another org).
    #[error("mail domain in use: {0}")]
    MailDomainInUse(String),
    /// The domain is not in a usable state (kept for wire compatibility; not raised yet).
    #[error("mail domain state: {0}")]
    MailDomainState(String),
    /// The password violates the WorkMail directory password policy.
    #[error("invalid password: {0}")]
    InvalidPassword(String),
    /// RegisterToWorkMail on an entity already enabled with another address.
    #[error("entity already registered: {0}")]
    EntityAlreadyRegistered(String),
    /// The name is reserved for the system.
    #[error("reserved name: {0}")]
    ReservedName(String),
    /// A per-entity or per-org limit (e.g. 100 aliases) would be exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A resource would have neither automatic booking responses nor a delegate.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    /// A non-entity resource (a personal access token) named by id does not exist.
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    /// The operation is not supported by this directory.
    #[error("unsupported operation: {0}")]
    UnsupportedOperation(String),
    /// The persistence backend failed; nothing was changed in memory.
    #[error("directory backend failure: {0}")]
    Backend(String),
}

impl DirectoryError {
    /// The WorkMail exception name for the admin API's `__type` field.
    /// `Backend` maps to `DirectoryUnavailableException`, WorkMail's own name
    /// for "the directory could not be reached".
    pub fn aws_type(&self) -> &'static str {
        match self {
            Self::EntityNotFound(_) => "EntityNotFoundException",
            Self::EntityState(_) => "EntityStateException",
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::OrganizationNotFound(_) => "OrganizationNotFoundException",
            Self::OrganizationState(_) => "OrganizationStateException",
            Self::NameAvailability(_) => "NameAvailabilityException",
            Self::EmailAddressInUse(_) => "EmailAddressInUseException",
            Self::MailDomainNotFound(_) => "MailDomainNotFoundException",
            Self::MailDomainInUse(_) => "MailDomainInUseException",
            Self::MailDomainState(_) => "MailDomainStateException",
            Self::InvalidPassword(_) => "InvalidPasswordException",
            Self::EntityAlreadyRegistered(_) => "EntityAlreadyRegisteredException",
            Self::ReservedName(_) => "ReservedNameException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::InvalidConfiguration(_) => "InvalidConfigurationException",
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::UnsupportedOperation(_) => "UnsupportedOperationException",
            Self::Backend(_) => "DirectoryUnavailableException",
        }
    }

    /// The human message without the variant prefix, for the admin API's `message` field.
    pub fn message(&self) -> &str {
        match self {
            Self::EntityNotFound(m)
            | Self::EntityState(m)
            | Self::InvalidParameter(m)
            | Self::OrganizationNotFound(m)
            | Self::OrganizationState(m)
            | Self::NameAvailability(m)
            | Self::EmailAddressInUse(m)
            | Self::MailDomainNotFound(m)
            | Self::MailDomainInUse(m)
            | Self::MailDomainState(m)
            | Self::InvalidPassword(m)
            | Self::EntityAlreadyRegistered(m)
            | Self::ReservedName(m)
            | Self::LimitExceeded(m)
            | Self::InvalidConfiguration(m)
            | Self::ResourceNotFound(m)
            | Self::UnsupportedOperation(m)
            | Self::Backend(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DirectoryError as E;

    #[test]
    fn every_variant_maps_to_an_exception_name() {
        let all = [
            E::EntityNotFound("x".into()),
            E::EntityState("x".into()),
            E::InvalidParameter("x".into()),
            E::OrganizationNotFound("x".into()),
            E::OrganizationState("x".into()),
            E::NameAvailability("x".into()),
            E::EmailAddressInUse("x".into()),
            E::MailDomainNotFound("x".into()),
            E::MailDomainInUse("x".into()),
            E::MailDomainState("x".into()),
            E::InvalidPassword("x".into()),
            E::EntityAlreadyRegistered("x".into()),
            E::ReservedName("x".into()),
            E::LimitExceeded("x".into()),
            E::InvalidConfiguration("x".into()),
            E::ResourceNotFound("x".into()),
            E::UnsupportedOperation("x".into()),
            E::Backend("x".into()),
        ];
        let mut names: Vec<&str> = all.iter().map(|e| e.aws_type()).collect();
        assert!(names.iter().all(|n| n.ends_with("Exception")));
        assert!(all.iter().all(|e| e.message() == "x"));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "names must be distinct");
    }

    #[test]
    fn display_carries_the_message() {
        let e = E::EntityNotFound("user bob".into());
        assert_eq!(e.to_string(), "entity not found: user bob");
        assert_eq!(e.aws_type(), "EntityNotFoundException");
    }
}
