//! The retention policy itself: WorkMail's shape (Id, Name, Description,
//! FolderConfigurations), the validation PutRetentionPolicy applies, which policy
//! id a Put ends up writing, and what a policy asks of each folder at a given
//! time. Pure: no store, no clock.

use serde::{Deserialize, Serialize};

use crate::store::FolderKind;

/// Longest Period WorkMail accepts, in days (the model's `RetentionPeriod`).
pub const MAX_PERIOD_DAYS: i64 = 730;
/// One day in milliseconds, the unit of Period.
const DAY_MS: i64 = 86_400_000;

/// An organization's retention policy as stored and as GetDefaultRetentionPolicy
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionPolicy {
    /// The policy id (a `ShortString`).
    pub id: String,
    /// The policy name (a `ShortString`).
    pub name: String,
    /// Free text, absent when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// At most one per folder.
    pub folder_configurations: Vec<FolderConfiguration>,
}

/// What the policy does with one folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FolderConfiguration {
    /// The folder, by WorkMail's enum.
    pub name: FolderName,
    /// What happens to its items once older than `period` days.
    pub action: RetentionAction,
    /// Days, 1-730; present unless the action is NONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
}

/// WorkMail's `FolderName` enum: the five mail folders a policy can govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FolderName {
    Inbox,
    DeletedItems,
    SentItems,
    Drafts,
    JunkEmail,
}

/// WorkMail's `RetentionAction` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetentionAction {
    /// Keep everything.
    None,
    /// Move to Deleted Items, where the user can still recover it.
    Delete,
    /// Remove for good.
    PermanentlyDelete,
}

impl FolderName {
    /// The enum's wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderName::Inbox => "INBOX",
            FolderName::DeletedItems => "DELETED_ITEMS",
            FolderName::SentItems => "SENT_ITEMS",
            FolderName::Drafts => "DRAFTS",
            FolderName::JunkEmail => "JUNK_EMAIL",
        }
    }

    fn parse(s: &str) -> Option<FolderName> {
        [
            FolderName::Inbox,
            FolderName::DeletedItems,
            FolderName::SentItems,
            FolderName::Drafts,
            FolderName::JunkEmail,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }

    /// The store's default folder with this role (IMAP `\Trash`, `\Sent`,
    /// `\Drafts`, `\Junk` and the Inbox).
    pub fn kind(self) -> FolderKind {
        match self {
            FolderName::Inbox => FolderKind::Inbox,
            FolderName::DeletedItems => FolderKind::DeletedItems,
            FolderName::SentItems => FolderKind::SentItems,
            FolderName::Drafts => FolderKind::Drafts,
            FolderName::JunkEmail => FolderKind::JunkEmail,
        }
    }
}

impl RetentionAction {
    fn parse(s: &str) -> Option<RetentionAction> {
        match s {
            "NONE" => Some(RetentionAction::None),
            "DELETE" => Some(RetentionAction::Delete),
            "PERMANENTLY_DELETE" => Some(RetentionAction::PermanentlyDelete),
            _ => None,
        }
    }
}

/// Why a Put or Delete is refused: the admin API's InvalidParameterException or
/// LimitExceededException.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Limit(String),
}

/// One FolderConfiguration as a client sent it: enums as strings, so a value
/// outside them is an InvalidParameterException naming it rather than a parse error.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FolderConfigurationInput {
    /// Folder enum.
    pub name: String,
    /// Action enum.
    pub action: String,
    /// Days.
    #[serde(default)]
    pub period: Option<i64>,
}

/// Checks a `ShortString` member (Id, Name): 1-64 of `[a-zA-Z0-9_-]`.
pub fn check_short_string(member: &str, value: &str) -> Result<(), PolicyError> {
    if crate::access::is_id_token(value, 64) {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "{member} must be 1-64 characters of letters, digits, '_' and '-'"
        )))
    }
}

/// Checks a Description (`PolicyDescription`): 1-256 characters.
pub fn check_description(value: &str) -> Result<(), PolicyError> {
    if (1..=256).contains(&value.chars().count()) {
        Ok(())
    } else {
        Err(PolicyError::Invalid(
            "Description must be 1-256 characters".into(),
        ))
    }
}

/// Validates FolderConfigurations: known folder and action names, each folder
/// at most once, Period 1-730 days and required unless the action is NONE (a
/// NONE with a Period keeps it, as WorkMail echoes what it was given).
pub fn folder_configurations(
    input: Vec<FolderConfigurationInput>,
) -> Result<Vec<FolderConfiguration>, PolicyError> {
    let mut out: Vec<FolderConfiguration> = Vec::with_capacity(input.len());
    for (i, f) in input.into_iter().enumerate() {
        let at = format!("FolderConfigurations[{i}]");
        let name = FolderName::parse(&f.name).ok_or_else(|| {
            PolicyError::Invalid(format!(
                "{at}.Name {:?} is not one of INBOX, DELETED_ITEMS, SENT_ITEMS, DRAFTS, JUNK_EMAIL",
                f.name
            ))
        })?;
        let action = RetentionAction::parse(&f.action).ok_or_else(|| {
            PolicyError::Invalid(format!(
                "{at}.Action {:?} is not one of NONE, DELETE, PERMANENTLY_DELETE",
                f.action
            ))
        })?;
        if out.iter().any(|o| o.name == name) {
            return Err(PolicyError::Invalid(format!(
                "{at}: folder {} is configured twice",
                name.as_str()
            )));
        }
        let period = match f.period {
            Some(p) if (1..=MAX_PERIOD_DAYS).contains(&p) => u32::try_from(p).ok(),
            Some(p) => {
                return Err(PolicyError::Invalid(format!(
                    "{at}.Period {p} is outside 1-{MAX_PERIOD_DAYS} days"
                )));
            }
            None if action == RetentionAction::None => None,
            None => {
                return Err(PolicyError::Invalid(format!(
                    "{at}.Period is required for action {}",
                    f.action
                )));
            }
        };
        out.push(FolderConfiguration {
            name,
            action,
            period,
        });
    }
    Ok(out)
}

/// The id a PutRetentionPolicy writes under. An organization has one policy:
/// without an Id the Put replaces it (keeping its id) or creates it (with
/// `fresh`); with the Id of the current policy it replaces it; with an Id while
/// none exists it creates it under that Id; with another Id while one exists it
/// is LimitExceeded.
pub fn put_id(
    current: Option<&RetentionPolicy>,
    requested: Option<&str>,
    fresh: impl FnOnce() -> String,
) -> Result<String, PolicyError> {
    match (current, requested) {
        (Some(c), Some(r)) if c.id != r => Err(PolicyError::Limit(format!(
            "the organization already has retention policy {}; an organization has one",
            c.id
        ))),
        (_, Some(r)) => Ok(r.to_string()),
        (Some(c), None) => Ok(c.id.clone()),
        (None, None) => Ok(fresh()),
    }
}

/// What the sweeper does with a folder's expired items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    /// Move them to Deleted Items (recoverable).
    MoveToDeletedItems,
    /// Expunge them.
    Expunge,
}

/// The disposal a folder's action calls for: none for NONE; DELETE moves to
/// Deleted Items, except in Deleted Items itself, where deleting is permanent
/// (as in WorkMail's web app and Outlook).
pub fn disposal(folder: FolderName, action: RetentionAction) -> Option<Disposal> {
    match (folder, action) {
        (_, RetentionAction::None) => None,
        (_, RetentionAction::PermanentlyDelete) | (FolderName::DeletedItems, _) => {
            Some(Disposal::Expunge)
        }
        (_, RetentionAction::Delete) => Some(Disposal::MoveToDeletedItems),
    }
}

/// One folder's work in a sweep: items of `folder` with an internal date before
/// `before_ms` go the way of `disposal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderRule {
    /// The folder's role.
    pub folder: FolderKind,
    /// What happens to its expired items.
    pub disposal: Disposal,
    /// The cutoff, epoch ms: `now` minus the Period.
    pub before_ms: i64,
}

/// The folders a policy sweeps at `now_ms`, Deleted Items first: what this sweep
/// moves there waits at least until the next sweep before Deleted Items' own
/// rule can reach it. Folders with NONE, or without a Period, are left alone.
pub fn plan(policy: &RetentionPolicy, now_ms: i64) -> Vec<FolderRule> {
    let mut rules: Vec<(bool, FolderRule)> = policy
        .folder_configurations
        .iter()
        .filter_map(|f| {
            let disposal = disposal(f.name, f.action)?;
            let days = i64::from(f.period?);
            Some((
                f.name != FolderName::DeletedItems,
                FolderRule {
                    folder: f.name.kind(),
                    disposal,
                    before_ms: now_ms.saturating_sub(days * DAY_MS),
                },
            ))
        })
        .collect();
    rules.sort_by_key(|(later, _)| *later);
    rules.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, action: &str, period: Option<i64>) -> FolderConfigurationInput {
        FolderConfigurationInput {
            name: name.into(),
            action: action.into(),
            period,
        }
    }

    fn invalid(r: Result<Vec<FolderConfiguration>, PolicyError>) -> String {
        match r {
            Err(PolicyError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn folder_configurations_accept_the_models_values() {
        let got = folder_configurations(vec![
            input("INBOX", "DELETE", Some(30)),
            input("DELETED_ITEMS", "PERMANENTLY_DELETE", Some(1)),
            input("SENT_ITEMS", "NONE", None),
            input("DRAFTS", "NONE", Some(730)),
            input("JUNK_EMAIL", "PERMANENTLY_DELETE", Some(730)),
        ])
        .unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(
            got[0],
            FolderConfiguration {
                name: FolderName::Inbox,
                action: RetentionAction::Delete,
                period: Some(30)
            }
        );
        assert_eq!(got[2].period, None);
        assert_eq!(got[3].period, Some(730), "NONE keeps a given Period");
        assert!(folder_configurations(vec![]).unwrap().is_empty());
    }

    #[test]
    fn folder_configurations_refuse_bad_values() {
        for (bad, says) in [
            (input("OUTBOX", "DELETE", Some(1)), "Name"),
            (input("inbox", "DELETE", Some(1)), "Name"),
            (input("INBOX", "ARCHIVE", Some(1)), "Action"),
            (input("INBOX", "DELETE", Some(0)), "Period"),
            (input("INBOX", "DELETE", Some(731)), "Period"),
            (input("INBOX", "DELETE", Some(-5)), "Period"),
            (input("INBOX", "NONE", Some(0)), "Period"),
            (input("INBOX", "DELETE", None), "Period is required"),
            (
                input("INBOX", "PERMANENTLY_DELETE", None),
                "Period is required",
            ),
        ] {
            let m = invalid(folder_configurations(vec![bad]));
            assert!(m.contains(says), "{m}");
            assert!(m.contains("FolderConfigurations[0]"), "{m}");
        }
        let m = invalid(folder_configurations(vec![
            input("INBOX", "NONE", None),
            input("INBOX", "DELETE", Some(3)),
        ]));
        assert!(m.contains("twice") && m.contains("[1]"), "{m}");
    }

    #[test]
    fn short_strings_and_descriptions_follow_the_model() {
        assert!(check_short_string("Name", "default-Policy_1").is_ok());
        assert!(check_short_string("Name", &"a".repeat(64)).is_ok());
        for bad in ["", "has space", "dot.ted", "é", &"a".repeat(65)] {
            let e = check_short_string("Name", bad).unwrap_err();
            assert!(matches!(&e, PolicyError::Invalid(m) if m.starts_with("Name")));
        }
        assert!(check_description("Keep mail a year; then bin it!").is_ok());
        assert!(check_description(&"é".repeat(256)).is_ok());
        assert!(check_description("").is_err());
        assert!(check_description(&"x".repeat(257)).is_err());
    }

    fn policy(id: &str, folders: Vec<FolderConfiguration>) -> RetentionPolicy {
        RetentionPolicy {
            id: id.into(),
            name: "p".into(),
            description: None,
            folder_configurations: folders,
        }
    }

    #[test]
    fn one_policy_per_organization() {
        let fresh = || "new".to_string();
        let cur = policy("p1", vec![]);
        assert_eq!(put_id(None, None, fresh), Ok("new".into()));
        assert_eq!(put_id(None, Some("mine"), fresh), Ok("mine".into()));
        assert_eq!(put_id(Some(&cur), None, fresh), Ok("p1".into()));
        assert_eq!(put_id(Some(&cur), Some("p1"), fresh), Ok("p1".into()));
        assert!(matches!(
            put_id(Some(&cur), Some("p2"), fresh),
            Err(PolicyError::Limit(m)) if m.contains("p1")
        ));
    }

    #[test]
    fn disposal_per_folder_and_action() {
        use Disposal::*;
        use FolderName::*;
        use RetentionAction as A;
        for folder in [Inbox, SentItems, Drafts, JunkEmail, DeletedItems] {
            assert_eq!(disposal(folder, A::None), None);
            assert_eq!(disposal(folder, A::PermanentlyDelete), Some(Expunge));
        }
        for folder in [Inbox, SentItems, Drafts, JunkEmail] {
            assert_eq!(disposal(folder, A::Delete), Some(MoveToDeletedItems));
        }
        assert_eq!(
            disposal(DeletedItems, A::Delete),
            Some(Expunge),
            "deleting from Deleted Items is permanent"
        );
    }

    #[test]
    fn plan_sweeps_deleted_items_first_with_cutoffs_and_skips_none() {
        let f = |name, action, period| FolderConfiguration {
            name,
            action,
            period,
        };
        let p = policy(
            "p",
            vec![
                f(FolderName::Inbox, RetentionAction::Delete, Some(30)),
                f(FolderName::SentItems, RetentionAction::None, Some(5)),
                f(
                    FolderName::JunkEmail,
                    RetentionAction::PermanentlyDelete,
                    Some(1),
                ),
                f(FolderName::DeletedItems, RetentionAction::Delete, Some(7)),
                // Unreachable through validation; a stored policy missing its Period sweeps nothing.
                f(FolderName::Drafts, RetentionAction::Delete, None),
            ],
        );
        let now = 1_000 * DAY_MS;
        assert_eq!(
            plan(&p, now),
            vec![
                FolderRule {
                    folder: FolderKind::DeletedItems,
                    disposal: Disposal::Expunge,
                    before_ms: 993 * DAY_MS
                },
                FolderRule {
                    folder: FolderKind::Inbox,
                    disposal: Disposal::MoveToDeletedItems,
                    before_ms: 970 * DAY_MS
                },
                FolderRule {
                    folder: FolderKind::JunkEmail,
                    disposal: Disposal::Expunge,
                    before_ms: now - DAY_MS
                },
            ]
        );
        assert!(plan(&policy("p", vec![]), now).is_empty());
        // Early clocks do not overflow.
        assert_eq!(plan(&p, i64::MIN)[0].before_ms, i64::MIN);
    }

    #[test]
    fn stored_form_is_the_wire_form() {
        let p = RetentionPolicy {
            id: "p1".into(),
            name: "default".into(),
            description: None,
            folder_configurations: vec![FolderConfiguration {
                name: FolderName::JunkEmail,
                action: RetentionAction::PermanentlyDelete,
                period: Some(3),
            }],
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Id": "p1", "Name": "default", "FolderConfigurations": [
                {"Name": "JUNK_EMAIL", "Action": "PERMANENTLY_DELETE", "Period": 3}]})
        );
        assert_eq!(serde_json::from_value::<RetentionPolicy>(json).unwrap(), p);
    }
}
