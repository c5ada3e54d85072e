//! Access control for mailgate, after Amazon WorkMail: access control rules (protocol x
//! source IP x user x impersonation role), impersonation roles, impersonation bearer
//! tokens, and brute-force login throttling.
//!
//! Everything here is pure logic over an in-memory snapshot plus one persistence seam
//! ([`AccessBackend`]); time is always a parameter (`now_ms`, epoch milliseconds), so
//! tests control the clock. It decides; it never touches the store's mail, a socket or
//! a session: protocols ask, and each decision emits its audit event through `events`.
//!
//! # Access control rules: decided semantics
//!
//! The WorkMail guide leaves the rule algebra open (reference §1.5, §11.1-4, §11.7); this
//! module decides it as follows.
//!
//! * **Matching.** A rule matches a request when every condition family it sets matches.
//!   For a list `X` and its `NotX`: the request value must be in `X` if `X` is non-empty,
//!   and must not be in `NotX` if `NotX` is non-empty. Empty lists are "not set". A rule
//!   with only `NotX` lists is valid.
//! * **Principals.** A request is made by a user *or* an impersonation role. A rule with
//!   `UserIds` never matches a role; `NotUserIds` always passes for a role. Symmetrically,
//!   a rule with `ImpersonationRoleIds` never matches a user and `NotImpersonationRoleIds`
//!   always passes for a user. (An impersonated EWS call is judged as the role, not as
//!   the target user; the target is the role rules' business.)
//! * **Decision.** Any matching DENY denies; otherwise any matching ALLOW allows;
//!   otherwise DENY. So an empty rule set denies everything, and an unknown organization
//!   is treated the same way by the hot path.
//! * **Audit rule id.** [`Decision::deciding_rule`] is the first matching DENY, else the
//!   first matching ALLOW, else none; [`Decision::matched_rules`] lists every matching
//!   rule name in rule order (GetAccessControlEffect's `MatchedRules`).
//! * **Rule order** is order of first creation; replacing a rule by name keeps its
//!   position and its DateCreated.
//! * **IP ranges** accept IPv4 and IPv6 CIDRs (WorkMail accepts IPv4 only); host bits
//!   below the prefix are ignored. IPv4 and IPv4-mapped IPv6 are one address space:
//!   `10.0.0.1` and `::ffff:10.0.0.1` match the same ranges, whether a range is written
//!   `10.0.0.0/8` or `::ffff:10.0.0.0/104`, and `::/0` covers IPv4 sources too.
//! * **Actions** are matched case-insensitively on input and stored in WorkMail's
//!   spelling; unknown values (including the log-only `IncomingEmail`) are refused.
//! * `UserIds` and `ImpersonationRoleIds` are opaque: a Put does not check that they
//!   exist, and an id that no longer exists simply never matches.
//!
//! Changes apply atomically and at once (no 5-minute propagation): every mutation is
//! saved, then published as a new immutable snapshot and [`AccessEngine::generation`]
//! moves, so live sessions can re-check.
//!
//! # Impersonation
//!
//! Role rules follow the guide (reference §2.3): among rules whose target condition
//! matches, DENY wins, then ALLOW, else deny; no rules means nobody. Target users are
//! resolved to ids when the role is saved (so renaming a user or changing an email does
//! not change who a rule names); unknown identifiers are refused then, disabled users are
//! accepted but cannot be impersonated. Tokens are signed, not stored, carry the role
//! version, and are reusable until expiry (900 s); deleting or updating the role
//! invalidates them at once. See [`token`] for the format.

pub mod arn;
mod backend;
mod document;
mod engine;
mod error;
mod evaluate;
mod failures;
mod iprange;
pub mod keyfile;
pub mod login;
pub mod mailbox;
mod protocol;
mod role_api;
mod roles;
mod rule_api;
mod rules;
pub mod throttle;
pub mod token;
mod token_api;
mod user_resolver;
mod validate;

#[cfg(test)]
mod tests;

pub use backend::{AccessBackend, DocumentChanges, Fenced, MemoryBackend};
pub use engine::{AccessEngine, AccessLimits};
pub use error::AccessError;
pub use evaluate::{Decision, Principal, Request, evaluate};
pub use failures::{Admission, FailurePolicy, FailureTracker, RetryAfter, Slice, account_key};
pub use iprange::{IpRange, IpSet, ip_key};
pub use protocol::{Protocol, ProtocolSet};
pub use roles::{
    ImpersonationRole, ImpersonationRoleInput, ImpersonationRoleSummary, ImpersonationRule,
    MatchedImpersonationRule, READ_ACTIONS, ResolvedUser, Role, RoleEffect, RoleType, RuleTargets,
    UserResolver,
};
pub use rules::{
    AccessControlRule, AccessControlRuleInput, DEFAULT_RULE_DESCRIPTION, DEFAULT_RULE_NAME, Effect,
    Rule,
};
pub use token::{TOKEN_LIFETIME_SECS, TokenClaims, TokenError, TokenKeys};
pub use token_api::{AssumedRole, VerifiedToken};
pub use validate::is_id_token;
