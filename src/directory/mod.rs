//! The directory: organizations, mail domains, users (argon2id passwords),
//! groups, resources, aliases and mailbox permissions, as Amazon WorkMail has
//! them (reference `workmail-identity-and-access.md` §3, §4, §6, §7).
//!
//! Everything lives in memory behind one `RwLock` inside [`Directory`]; a
//! [`DirectoryBackend`] (implemented by `store`) persists each entity as one
//! JSON [`Record`]. Every mutation validates under the write lock, edits
//! copies of the entities it touches, writes them in one atomic batch, and only
//! then commits them to memory, so a failed write changes nothing.
//!
//! Operations are named after the WorkMail API actions and fail with
//! [`DirectoryError`], whose variants are WorkMail's exception names. Lookups
//! on the protocol hot path ([`Directory::resolve_address`],
//! [`Directory::login_lookup`], [`Directory::mailbox_rights`],
//! [`Directory::sender_grants`], [`Directory::user_epoch`],
//! [`Directory::personal_access_token`]) take the read lock only. Personal access
//! tokens (hashes only) are directory records too ([`pat`]).
//! The directory holds data and answers lookups; what a principal may do with it is
//! `access`'s decision. It never touches SQL (its backend does), mail or sessions.

mod aliases;
mod backend;
mod entity;
mod error;
mod groups;
pub mod ids;
mod lifecycle;
mod lookup;
mod memory_backend;
mod model;
mod orgs;
mod password;
pub mod pat;
mod pats;
mod permissions;
mod resolve;
mod resources;
mod service;
mod state;
mod tx;
mod users;
pub mod validate;

/// Fixtures for other modules' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Directory, NewUser};

    /// An enabled user `name@acme.test` (the organization's domain in the protocol
    /// tests) with `password`; returns its id.
    pub fn user(d: &Directory, org: &str, name: &str, password: &str) -> String {
        let id = d
            .create_user(
                org,
                NewUser {
                    name,
                    display_name: name,
                    password: Some(password),
                    role: None,
                    first_name: None,
                    last_name: None,
                    hidden_from_gal: false,
                },
            )
            .unwrap();
        d.register_to_workmail(org, &id, &format!("{name}@acme.test"))
            .unwrap();
        id
    }
}

#[cfg(test)]
mod tests;

pub use backend::{
    DirectoryBackend, Fenced, MAX_FENCED_ATTEMPTS, Record, RecordChanges, RecordKind, RecordOp,
    UnknownRecordKind, fenced_retry_pause, last_op_per_record,
};
pub use error::DirectoryError;
pub use lookup::{LoginCandidate, Recipient, Rights};
pub use memory_backend::MemoryBackend;
pub use model::{
    BookingOptions, ContactDetails, DEFAULT_QUOTA_MB, EntityBase, EntityKind, EntityState,
    EntitySummary, Group, GroupMember, MailDomain, MailboxGrant, MemberRef, MemberType,
    NewResource, NewUser, Organization, OrganizationState, Permission, Resource, ResourceType,
    ResourceUpdate, User, UserRole, UserUpdate,
};
pub use password::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PhcString, check_password_policy, hash_password,
    release_work_area, verify_dummy, verify_password,
};
pub use pat::PersonalAccessToken;
pub use pats::{LAST_USED_FLUSH_MS, NewToken};
pub use resolve::{ANY_KIND, USER_OR_GROUP};
pub use service::Directory;
