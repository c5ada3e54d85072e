//! LIST (with LIST-EXTENDED selection and return options, LIST-STATUS and
//! SPECIAL-USE), LSUB and STATUS.

use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;

use crate::imap::extended::Extras;
use crate::imap::names::{self, DELIMITER};
use crate::imap::session::{Done, Imap, store_failure};
use crate::store::Folder;

/// LIST or LSUB.
pub async fn list(
    imap: &mut Imap,
    reference: &Mailbox<'_>,
    pattern: &ListMailbox<'_>,
    extras: &Extras,
    lsub: bool,
) -> Done {
    if let Some(bad) = unknown_option(extras) {
        return Done::bad(bad);
    }
    let verb = if lsub { "LSUB" } else { "LIST" };
    let reference = match reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(o) => String::from_utf8_lossy(o.as_ref()).into_owned(),
    };
    let first = names::from_list_mailbox(pattern);
    if first.is_empty() && extras.list_patterns.is_empty() && !lsub {
        imap.untagged("LIST (\\Noselect) \"/\" \"\"");
        return Done::ok("LIST completed");
    }
    // Every pattern of `LIST ref (p1 p2 ...)`, each joined to the reference.
    let patterns: Vec<String> = std::iter::once(first)
        .chain(extras.list_patterns.iter().cloned())
        .map(|pattern| {
            let pattern = if imap.utf8 {
                pattern
            } else {
                names::from_mutf7(&pattern).unwrap_or(pattern)
            };
            if reference.is_empty() || pattern.starts_with(DELIMITER) {
                pattern
            } else if reference.ends_with(DELIMITER) {
                format!("{reference}{pattern}")
            } else {
                format!("{reference}{DELIMITER}{pattern}")
            }
        })
        .collect();
    let mut folders = match imap.all_folders().await {
        Ok(f) => f,
        Err(done) => return done,
    };
    if !lsub {
        add_namespace_nodes(&mut folders);
    }
    let select_subscribed = lsub || extras.list_select.iter().any(|o| o == "SUBSCRIBED");
    let select_special = extras.list_select.iter().any(|o| o == "SPECIAL-USE");
    let return_subscribed = extras.list_return.iter().any(|o| o == "SUBSCRIBED");
    let status_items: Option<Vec<String>> = extras
        .list_return
        .iter()
        .find_map(|o| o.strip_prefix("STATUS "))
        .map(|items| {
            items
                .trim_matches(|c| c == '(' || c == ')')
                .split_whitespace()
                .map(str::to_string)
                .collect()
        });
    let recursive = extras.list_select.iter().any(|o| o == "RECURSIVEMATCH");
    // Subscribed names: folders with the flag, and names without a folder.
    let orphans = if lsub || select_subscribed || return_subscribed {
        match imap.ctx.subscriptions.list(imap.mailbox_id()).await {
            Ok(o) => o,
            Err(e) => return store_failure(e),
        }
    } else {
        Vec::new()
    };
    let subscribed: Vec<&str> = folders
        .iter()
        .filter(|f| f.subscribed)
        .map(|f| f.name.as_str())
        .chain(orphans.iter().map(String::as_str))
        .collect();
    let matching = |name: &str| patterns.iter().any(|p| names::matches(p, name));
    // LSUB with a trailing `%` shows unsubscribed parents of subscribed names
    // as \Noselect (RFC 3501 6.3.9).
    let lsub_parents = lsub && patterns.iter().any(|p| p.ends_with('%'));
    for f in &folders {
        if !matching(&f.name) {
            continue;
        }
        let prefix = format!("{}{DELIMITER}", f.name);
        let mut extended = "";
        let mut attrs = Vec::new();
        if (select_subscribed || lsub) && !f.subscribed {
            let below = |all: bool| {
                subscribed
                    .iter()
                    .any(|s| s.starts_with(&prefix) && (all || !matching(s)))
            };
            if lsub && lsub_parents && below(true) {
                attrs.push("\\Noselect");
            } else if !lsub && recursive && below(false) {
                // RECURSIVEMATCH: a parent of subscribed names the patterns miss
                // (RFC 5258 3.5).
                extended = " (\"CHILDINFO\" (\"SUBSCRIBED\"))";
            } else {
                continue;
            }
        }
        let special = f.kind.and_then(|k| k.special_use());
        if select_special && special.is_none() {
            continue;
        }
        if f.id == NOSELECT && !attrs.contains(&"\\Noselect") {
            attrs.push("\\Noselect");
        }
        if folders.iter().any(|c| c.name.starts_with(&prefix)) {
            attrs.push("\\HasChildren");
        } else {
            attrs.push("\\HasNoChildren");
        }
        if (return_subscribed || select_subscribed) && f.subscribed && !lsub {
            attrs.push("\\Subscribed");
        }
        if let Some(s) = special
            && !lsub
        {
            attrs.push(s);
        }
        let line = format!(
            "{verb} ({}) \"{DELIMITER}\" {}{extended}",
            attrs.join(" "),
            imap.wire_name(&f.name)
        );
        imap.untagged(&line);
        if let Some(items) = &status_items
            && f.id != NOSELECT
        {
            let values = status_values(imap, f, items).await;
            match values {
                Ok(v) => {
                    let line = format!("STATUS {} ({v})", imap.wire_name(&f.name));
                    imap.untagged(&line);
                }
                Err(done) => return done,
            }
        }
    }
    // Subscribed names with no folder: LSUB and LIST (SUBSCRIBED) show them.
    if (lsub || select_subscribed) && !select_special {
        for name in orphans.iter().filter(|n| matching(n)) {
            let attrs = if lsub {
                ""
            } else {
                "\\Subscribed \\NonExistent"
            };
            let line = format!("{verb} ({attrs}) \"{DELIMITER}\" {}", imap.wire_name(name));
            imap.untagged(&line);
        }
    }
    Done::ok(format!("{verb} completed"))
}

/// Why the LIST-EXTENDED options cannot be served (RFC 5258 3: an unknown
/// selection or return option, or RECURSIVEMATCH without a selection option it
/// could apply to, is BAD).
fn unknown_option(extras: &Extras) -> Option<String> {
    const SELECT: [&str; 4] = ["SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"];
    const RETURN: [&str; 3] = ["SUBSCRIBED", "CHILDREN", "SPECIAL-USE"];
    let select = &extras.list_select;
    if let Some(o) = select.iter().find(|o| !SELECT.contains(&o.as_str())) {
        return Some(format!("Unknown LIST selection option {o}"));
    }
    if select.iter().any(|o| o == "RECURSIVEMATCH")
        && !select
            .iter()
            .any(|o| o != "RECURSIVEMATCH" && o != "REMOTE")
    {
        return Some("RECURSIVEMATCH needs another selection option".into());
    }
    extras
        .list_return
        .iter()
        .find(|o| !RETURN.contains(&o.as_str()) && !o.starts_with("STATUS "))
        .map(|o| format!("Unknown LIST return option {o}"))
}

/// The id of the placeholder folders that stand for namespace levels.
const NOSELECT: i64 = -1;

/// `Other Users` and `Other Users/<address>` as \\Noselect levels above the shared
/// folders, so hierarchy browsing (`%`) reaches them.
fn add_namespace_nodes(folders: &mut Vec<Folder>) {
    let mut nodes: Vec<String> = Vec::new();
    for f in folders.iter() {
        if let Some(rest) = f
            .name
            .strip_prefix(names::OTHER_USERS)
            .and_then(|r| r.strip_prefix(DELIMITER))
        {
            let owner = rest.split(DELIMITER).next().unwrap_or_default();
            for node in [
                names::OTHER_USERS.to_string(),
                format!("{}{DELIMITER}{owner}", names::OTHER_USERS),
            ] {
                if !nodes.contains(&node) {
                    nodes.push(node);
                }
            }
        }
    }
    for name in nodes {
        let template = folders[0].clone();
        folders.push(Folder {
            id: NOSELECT,
            name,
            kind: None,
            subscribed: false,
            ..template
        });
    }
    folders.sort_by(|a, b| a.name.cmp(&b.name));
}

/// STATUS RECENT: the messages no session has seen yet (`recent`), plus, for
/// the folder this session has selected, those recent in it.
fn recent_count(imap: &Imap, f: &Folder, metas: &[crate::store::MessageMeta]) -> u64 {
    let first = imap.ctx.recent.first_unclaimed((f.id, f.uidvalidity));
    let unclaimed = metas.iter().filter(|m| m.uid >= first).count() as u64;
    let mine = match &imap.selected {
        // Read-only, the view's recent messages are the unclaimed ones.
        Some(v) if v.folder.id == f.id && !v.read_only => u64::from(v.recent_count()),
        _ => 0,
    };
    unclaimed + mine
}

/// The `NAME value ...` list of a STATUS response.
async fn status_values(imap: &Imap, f: &Folder, items: &[String]) -> Result<String, Done> {
    let needs_scan = items.iter().any(|i| {
        matches!(
            i.as_str(),
            "DELETED" | "SIZE" | "UNSEEN" | "MESSAGES" | "RECENT"
        )
    });
    let metas = if needs_scan {
        imap.ctx
            .store
            .messages(f.id, 1, u32::MAX)
            .await
            .map_err(store_failure)?
    } else {
        Vec::new()
    };
    let has = |m: &crate::store::MessageMeta, flag: &str| {
        m.flags.iter().any(|x| x.eq_ignore_ascii_case(flag))
    };
    let mut out = Vec::new();
    for item in items {
        let value = match item.as_str() {
            "MESSAGES" => metas.len() as u64,
            "UIDNEXT" => u64::from(f.uidnext),
            "UIDVALIDITY" => u64::from(f.uidvalidity),
            "UNSEEN" => metas.iter().filter(|m| !has(m, "\\Seen")).count() as u64,
            "DELETED" => metas.iter().filter(|m| has(m, "\\Deleted")).count() as u64,
            "SIZE" => metas.iter().map(|m| m.size).sum(),
            "HIGHESTMODSEQ" => f.highest_modseq,
            "RECENT" => recent_count(imap, f, &metas),
            _ => continue,
        };
        out.push(format!("{item} {value}"));
    }
    Ok(out.join(" "))
}

/// STATUS of one folder.
pub async fn status(imap: &mut Imap, mailbox: &Mailbox<'_>, items: &[StatusDataItemName]) -> Done {
    let folder = match imap.folder(mailbox).await {
        Ok(f) => f,
        Err(done) => return done,
    };
    let names: Vec<String> = items
        .iter()
        .map(|i| {
            match i {
                StatusDataItemName::Messages => "MESSAGES",
                StatusDataItemName::Recent => "RECENT",
                StatusDataItemName::UidNext => "UIDNEXT",
                StatusDataItemName::UidValidity => "UIDVALIDITY",
                StatusDataItemName::Unseen => "UNSEEN",
                StatusDataItemName::Deleted => "DELETED",
                StatusDataItemName::DeletedStorage => "DELETED-STORAGE",
                StatusDataItemName::Size => "SIZE",
                StatusDataItemName::HighestModSeq => "HIGHESTMODSEQ",
            }
            .to_string()
        })
        .collect();
    match status_values(imap, &folder, &names).await {
        Ok(v) => {
            let line = format!("STATUS {} ({v})", imap.wire_name(&folder.name));
            imap.untagged(&line);
            Done::ok("STATUS completed")
        }
        Err(done) => done,
    }
}
