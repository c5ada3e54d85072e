//! The directory's entities as WorkMail has them. These structs are also the
//! persisted JSON (one record per organization, user, group and resource), so
//! group members, resource delegates and mailbox permissions live inside the
//! owning entity and every mutation is a handful of whole-record writes.
//!
//! The admin API builds its own wire shapes from these; they carry the password
//! hash and must not be serialised to clients as they are.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::DirectoryError;
use super::password::PhcString;
use super::validate::MAX_QUOTA_MB;

/// Declares a string-valued enum with its WorkMail spelling for JSON, `as_str`
/// and `FromStr` (which refuses unknown values with `InvalidParameter`).
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),+ }

        impl $name {
            /// The WorkMail API spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = DirectoryError;
            fn from_str(s: &str) -> Result<Self, DirectoryError> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(DirectoryError::InvalidParameter(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    ))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Organization state. Only Active is reachable today; the others exist in
    /// WorkMail and make `OrganizationStateException` meaningful.
    OrganizationState {
        /// Usable.
        Active = "Active",
        /// Switched off (reserved for a future DeleteOrganization).
        Inactive = "Inactive",
    }
);

wire_enum!(
    /// Lifecycle state of a user, group or resource.
    EntityState {
        /// Registered to WorkMail: has a primary email and receives mail.
        Enabled = "ENABLED",
        /// Never registered or deregistered: keeps its addresses, gets no mail, cannot log in.
        Disabled = "DISABLED",
        /// Deleted: kept as a tombstone reachable only by id; holds no names or addresses.
        Deleted = "DELETED",
    }
);

wire_enum!(
    /// A user's role. RESOURCE and SYSTEM_USER exist in WorkMail but cannot be set.
    UserRole {
        /// A mailbox user.
        User = "USER",
        /// Listed in the address book, no mailbox here (cannot log in).
        RemoteUser = "REMOTE_USER",
        /// A resource modelled as a user (interoperability mode only).
        Resource = "RESOURCE",
        /// A system account.
        SystemUser = "SYSTEM_USER",
    }
);

wire_enum!(
    /// Kind of a resource.
    ResourceType {
        /// A meeting room.
        Room = "ROOM",
        /// Bookable equipment.
        Equipment = "EQUIPMENT",
    }
);

wire_enum!(
    /// One mailbox permission value.
    Permission {
        /// Read and write the whole mailbox.
        FullAccess = "FULL_ACCESS",
        /// Send as the owner with no trace of the real sender.
        SendAs = "SEND_AS",
        /// Send on behalf of the owner (`Sender:` names the real sender).
        SendOnBehalf = "SEND_ON_BEHALF",
    }
);

wire_enum!(
    /// Type of a group member, resource delegate or permission grantee.
    MemberType {
        /// A user.
        User = "USER",
        /// A group (its members, nested, are included).
        Group = "GROUP",
    }
);

wire_enum!(
    /// The three kinds of directory entity that carry names and addresses.
    EntityKind {
        /// A user.
        User = "USER",
        /// A group.
        Group = "GROUP",
        /// A resource.
        Resource = "RESOURCE",
    }
);

impl MemberType {
    /// The entity kind with the same meaning.
    pub fn kind(self) -> EntityKind {
        match self {
            MemberType::User => EntityKind::User,
            MemberType::Group => EntityKind::Group,
        }
    }
}

/// An organization: the tenant that owns mail domains and entities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    /// `m-` + 32 lowercase hex.
    pub id: String,
    /// Unique alias (compared case-insensitively), as given at creation.
    pub alias: String,
    /// Active unless switched off.
    pub state: OrganizationState,
    /// The domain the console suggests for new addresses; always in `mail_domains`.
    pub default_mail_domain: String,
    /// Registered domains, lowercase, in registration order.
    pub mail_domains: Vec<String>,
    /// Creation time, epoch milliseconds.
    pub created: u64,
    /// PutInboundDmarcSettings: whether inbound mail that fails DMARC gets the
    /// sending domain's policy (quarantine to Junk, reject). On for new
    /// organizations, as in WorkMail; organizations stored before the setting
    /// existed read as on too.
    #[serde(default = "enforced_by_default")]
    pub inbound_dmarc_enforced: bool,
}

fn enforced_by_default() -> bool {
    true
}

/// One mail domain of an organization, as ListMailDomains reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailDomain {
    /// Lowercase domain name.
    pub name: String,
    /// Whether it is the organization's default domain.
    pub is_default: bool,
}

/// The fields users, groups and resources share: identity, naming, addresses
/// and lifecycle. Flattened into each entity's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityBase {
    /// UUIDv4 for users and groups, `r-` + 32 hex for resources.
    pub id: String,
    /// The owning organization's id.
    pub org_id: String,
    /// Unique per organization and kind (case-insensitive) while not deleted.
    pub name: String,
    /// Lifecycle state.
    pub state: EntityState,
    /// Primary address (lowercase), set by RegisterToWorkMail.
    pub email: Option<String>,
    /// Further addresses (lowercase, sorted), at most 100.
    pub aliases: Vec<String>,
    /// Hidden from the global address list.
    pub hidden_from_gal: bool,
    /// Creation time, epoch ms.
    pub created: u64,
    /// Last time the entity was enabled, epoch ms.
    pub enabled_date: Option<u64>,
    /// Last time the entity was disabled, epoch ms.
    pub disabled_date: Option<u64>,
    /// When the entity was deleted, epoch ms.
    pub deleted_date: Option<u64>,
}

impl EntityBase {
    pub(crate) fn new(id: String, org_id: &str, name: &str, hidden: bool, now: u64) -> Self {
        EntityBase {
            id,
            org_id: org_id.to_string(),
            name: name.to_string(),
            state: EntityState::Disabled,
            email: None,
            aliases: Vec::new(),
            hidden_from_gal: hidden,
            created: now,
            enabled_date: None,
            disabled_date: None,
            deleted_date: None,
        }
    }

    /// The primary address followed by the aliases.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.email
            .iter()
            .map(String::as_str)
            .chain(self.aliases.iter().map(String::as_str))
    }

    /// Whether the entity is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.state == EntityState::Deleted
    }
}

/// Optional contact attributes that UpdateUser can set (reference model's `UserAttribute`s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactDetails {
    /// Initials.
    pub initials: Option<String>,
    /// Telephone number.
    pub telephone: Option<String>,
    /// Street address.
    pub street: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Zip code.
    pub zip_code: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Office.
    pub office: Option<String>,
}

/// Permissions granted on a mailbox to one grantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxGrant {
    /// The grantee's id.
    pub grantee_id: String,
    /// User or group.
    pub grantee_type: MemberType,
    /// Non-empty set of permission values.
    pub values: BTreeSet<Permission>,
}

/// A reference from a group (member) or resource (delegate) to a user or group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MemberRef {
    /// The member's id.
    pub id: String,
    /// User or group.
    #[serde(rename = "type")]
    pub kind: MemberType,
}

/// Default mailbox quota in MB.
pub const DEFAULT_QUOTA_MB: u32 = MAX_QUOTA_MB;

/// A user, with its mailbox settings and the permissions granted on its mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Shared entity fields.
    #[serde(flatten)]
    pub base: EntityBase,
    /// Display name.
    pub display_name: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// USER or REMOTE_USER.
    pub role: UserRole,
    /// Argon2id hash; `None` means no password login is possible.
    pub password_hash: Option<PhcString>,
    /// Bumped whenever credentials stop being valid (password reset, disable,
    /// delete, role change) so live sessions notice with one integer compare.
    pub credential_epoch: u64,
    /// Mailbox quota in MB (1–51,200).
    pub mailbox_quota_mb: u32,
    /// Contact attributes.
    #[serde(default)]
    pub contact: ContactDetails,
    /// Grants on this user's mailbox, sorted by grantee id.
    #[serde(default)]
    pub permissions: Vec<MailboxGrant>,
}

/// A group: a distribution list and a permission grantee; has no mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Shared entity fields.
    #[serde(flatten)]
    pub base: EntityBase,
    /// Direct members (users and groups), sorted by id; nesting without cycles.
    #[serde(default)]
    pub members: Vec<MemberRef>,
}

/// Automatic answers of a resource to booking requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingOptions {
    /// Accept requests automatically.
    pub auto_accept_requests: bool,
    /// Decline recurring requests automatically.
    pub auto_decline_recurring_requests: bool,
    /// Decline requests that conflict automatically.
    pub auto_decline_conflicting_requests: bool,
}

impl Default for BookingOptions {
    /// WorkMail's defaults: accept, do not refuse recurring, refuse conflicts.
    fn default() -> Self {
        BookingOptions {
            auto_accept_requests: true,
            auto_decline_recurring_requests: false,
            auto_decline_conflicting_requests: true,
        }
    }
}

/// A bookable room or piece of equipment, with its delegates and the
/// permissions granted on its mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Shared entity fields.
    #[serde(flatten)]
    pub base: EntityBase,
    /// ROOM or EQUIPMENT.
    pub resource_type: ResourceType,
    /// Description (≤64 chars).
    pub description: Option<String>,
    /// Automatic booking answers.
    pub booking_options: BookingOptions,
    /// Users and groups that answer booking requests, sorted by id.
    #[serde(default)]
    pub delegates: Vec<MemberRef>,
    /// Grants on this resource's mailbox, sorted by grantee id.
    #[serde(default)]
    pub permissions: Vec<MailboxGrant>,
}

/// One direct member of a group, as ListGroupMembers reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub id: String,
    /// Member name.
    pub name: String,
    /// User or group.
    pub kind: MemberType,
    /// Member state.
    pub state: EntityState,
    /// When the member was last enabled.
    pub enabled_date: Option<u64>,
    /// When the member was last disabled.
    pub disabled_date: Option<u64>,
}

/// What an identifier or address names: DescribeEntity's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntitySummary {
    /// Entity id.
    pub id: String,
    /// User, group or resource name.
    pub name: String,
    /// Which kind of entity.
    pub kind: EntityKind,
}

/// Input of CreateUser.
#[derive(Debug, Clone, Default)]
pub struct NewUser<'a> {
    /// User name (reference §6).
    pub name: &'a str,
    /// Display name (≤256 chars).
    pub display_name: &'a str,
    /// Initial password; checked against the policy, then hashed.
    pub password: Option<&'a str>,
    /// USER (default) or REMOTE_USER.
    pub role: Option<UserRole>,
    /// First name.
    pub first_name: Option<&'a str>,
    /// Last name.
    pub last_name: Option<&'a str>,
    /// Hide from the global address list.
    pub hidden_from_gal: bool,
}

/// Input of UpdateUser: `None` leaves a field alone; `Some("")` clears an
/// optional attribute.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// New role (USER or REMOTE_USER).
    pub role: Option<UserRole>,
    /// New display name.
    pub display_name: Option<String>,
    /// New first name.
    pub first_name: Option<String>,
    /// New last name.
    pub last_name: Option<String>,
    /// New GAL visibility.
    pub hidden_from_gal: Option<bool>,
    /// New contact attributes (each `Some` field replaces the stored one).
    pub contact: ContactDetails,
}

/// Input of CreateResource.
#[derive(Debug, Clone)]
pub struct NewResource<'a> {
    /// Resource name (1–20 chars).
    pub name: &'a str,
    /// ROOM or EQUIPMENT.
    pub resource_type: ResourceType,
    /// Description (1–64 chars when given).
    pub description: Option<&'a str>,
    /// Hide from the global address list.
    pub hidden_from_gal: bool,
}

/// Input of UpdateResource: `None` leaves a field alone; `Some("")` clears the description.
#[derive(Debug, Clone, Default)]
pub struct ResourceUpdate {
    /// New name.
    pub name: Option<String>,
    /// New type.
    pub resource_type: Option<ResourceType>,
    /// New description.
    pub description: Option<String>,
    /// New booking options.
    pub booking_options: Option<BookingOptions>,
    /// New GAL visibility.
    pub hidden_from_gal: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_wire_spelling() {
        for s in ["ENABLED", "DISABLED", "DELETED"] {
            assert_eq!(s.parse::<EntityState>().map(|e| e.as_str()), Ok(s));
        }
        for s in ["USER", "REMOTE_USER", "RESOURCE", "SYSTEM_USER"] {
            assert_eq!(s.parse::<UserRole>().map(|e| e.as_str()), Ok(s));
        }
        for s in ["FULL_ACCESS", "SEND_AS", "SEND_ON_BEHALF"] {
            assert_eq!(s.parse::<Permission>().map(|e| e.as_str()), Ok(s));
        }
        assert_eq!("ROOM".parse::<ResourceType>(), Ok(ResourceType::Room));
        assert!(matches!(
            "room".parse::<ResourceType>(),
            Err(DirectoryError::InvalidParameter(_))
        ));
        assert_eq!(
            serde_json::to_string(&Permission::SendOnBehalf)
                .ok()
                .as_deref(),
            Some("\"SEND_ON_BEHALF\"")
        );
        assert_eq!(MemberType::Group.kind(), EntityKind::Group);
    }

    #[test]
    fn booking_defaults_follow_workmail() {
        let b = BookingOptions::default();
        assert!(b.auto_accept_requests);
        assert!(!b.auto_decline_recurring_requests);
        assert!(b.auto_decline_conflicting_requests);
    }

    #[test]
    fn user_json_is_flat_and_round_trips() {
        let u = User {
            base: EntityBase::new("id-1".into(), "m-1", "bob", false, 7),
            display_name: "Bob".into(),
            first_name: None,
            last_name: Some("B".into()),
            role: UserRole::User,
            password_hash: Some(PhcString::new("$argon2id$x".into())),
            credential_epoch: 3,
            mailbox_quota_mb: DEFAULT_QUOTA_MB,
            contact: ContactDetails::default(),
            permissions: vec![MailboxGrant {
                grantee_id: "g".into(),
                grantee_type: MemberType::Group,
                values: [Permission::SendAs].into_iter().collect(),
            }],
        };
        let json = serde_json::to_string(&u).unwrap_or_default();
        assert!(json.contains("\"name\":\"bob\""), "{json}");
        assert!(json.contains("\"state\":\"DISABLED\""), "{json}");
        let back: Result<User, _> = serde_json::from_str(&json);
        assert_eq!(back.ok(), Some(u));
    }
}
