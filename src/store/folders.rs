//! The default folder set every mailbox starts with, and its IMAP SPECIAL-USE names.

/// The well-known folders: Exchange's distinguished folders that IMAP maps to
/// SPECIAL-USE attributes (RFC 6154) and EWS to DistinguishedFolderId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FolderKind {
    Inbox,
    Drafts,
    SentItems,
    DeletedItems,
    JunkEmail,
    Outbox,
    Archive,
    Calendar,
    Contacts,
    Tasks,
    Notes,
}

/// Name, kind and EWS folder class of each default folder, in creation order.
pub const DEFAULT_FOLDERS: &[(&str, FolderKind, &str)] = &[
    ("INBOX", FolderKind::Inbox, "IPF.Note"),
    ("Drafts", FolderKind::Drafts, "IPF.Note"),
    ("Sent Items", FolderKind::SentItems, "IPF.Note"),
    ("Deleted Items", FolderKind::DeletedItems, "IPF.Note"),
    ("Junk Email", FolderKind::JunkEmail, "IPF.Note"),
    ("Outbox", FolderKind::Outbox, "IPF.Note"),
    ("Archive", FolderKind::Archive, "IPF.Note"),
    ("Calendar", FolderKind::Calendar, "IPF.Appointment"),
    ("Contacts", FolderKind::Contacts, "IPF.Contact"),
    ("Tasks", FolderKind::Tasks, "IPF.Task"),
    ("Notes", FolderKind::Notes, "IPF.StickyNote"),
];

impl FolderKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FolderKind::Inbox => "inbox",
            FolderKind::Drafts => "drafts",
            FolderKind::SentItems => "sentitems",
            FolderKind::DeletedItems => "deleteditems",
            FolderKind::JunkEmail => "junkemail",
            FolderKind::Outbox => "outbox",
            FolderKind::Archive => "archive",
            FolderKind::Calendar => "calendar",
            FolderKind::Contacts => "contacts",
            FolderKind::Tasks => "tasks",
            FolderKind::Notes => "notes",
        }
    }

    /// Parses the stored spelling, which is also EWS's DistinguishedFolderId name.
    pub fn parse(s: &str) -> Option<FolderKind> {
        DEFAULT_FOLDERS
            .iter()
            .map(|f| f.1)
            .find(|k| k.as_str() == s)
    }

    /// The IMAP SPECIAL-USE attribute, where one exists.
    pub fn special_use(self) -> Option<&'static str> {
        match self {
            FolderKind::Drafts => Some("\\Drafts"),
            FolderKind::SentItems => Some("\\Sent"),
            FolderKind::DeletedItems => Some("\\Trash"),
            FolderKind::JunkEmail => Some("\\Junk"),
            FolderKind::Archive => Some("\\Archive"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_map_to_special_use() {
        for (_, kind, _) in DEFAULT_FOLDERS {
            assert_eq!(FolderKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(FolderKind::SentItems.special_use(), Some("\\Sent"));
        assert_eq!(FolderKind::DeletedItems.special_use(), Some("\\Trash"));
        assert_eq!(FolderKind::Inbox.special_use(), None);
        assert_eq!(FolderKind::parse("nope"), None);
    }
}
