//! The directory through EWS: ResolveNames (the organization's address list:
//! users, groups and resources, not hidden ones) and ExpandDL (a group's members).

use super::Reply;
use crate::directory::{EntityBase, EntityState, MemberType};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::xml::{Element, Xml};

/// One address-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub email: String,
    /// `Mailbox`, `PublicDL` (a group) or `Mailbox` for resources too.
    pub kind: &'static str,
}

fn visible(b: &EntityBase) -> bool {
    b.state == EntityState::Enabled && !b.hidden_from_gal && b.email.is_some()
}

/// The organization's address list.
fn address_list(ctx: &Context<'_>) -> Vec<(Entry, Vec<String>)> {
    let d = &ctx.ews.directory;
    let org = ctx.org_id();
    let entry = |b: &EntityBase, name: &str, kind| {
        let mut words: Vec<String> = vec![name.to_lowercase(), b.name.to_lowercase()];
        words.extend(b.email.iter().chain(&b.aliases).map(|a| a.to_lowercase()));
        (
            Entry {
                name: name.to_string(),
                email: b.email.clone().unwrap_or_default(),
                kind,
            },
            words,
        )
    };
    let mut out = Vec::new();
    for u in d
        .list_users(org)
        .unwrap_or_default()
        .iter()
        .filter(|u| visible(&u.base))
    {
        let name = if u.display_name.is_empty() {
            &u.base.name
        } else {
            &u.display_name
        };
        let mut e = entry(&u.base, name, "Mailbox");
        e.1.extend(
            u.first_name
                .iter()
                .chain(&u.last_name)
                .map(|n| n.to_lowercase()),
        );
        out.push(e);
    }
    for g in d
        .list_groups(org)
        .unwrap_or_default()
        .iter()
        .filter(|g| visible(&g.base))
    {
        out.push(entry(&g.base, &g.base.name, "PublicDL"));
    }
    for r in d
        .list_resources(org)
        .unwrap_or_default()
        .iter()
        .filter(|r| visible(&r.base))
    {
        out.push(entry(&r.base, &r.base.name, "Mailbox"));
    }
    out
}

/// Whether an entry matches what the user typed: `SMTP:addr` exactly, else the
/// start of any word of its names or addresses (case-insensitive).
fn matches(words: &[String], typed: &str) -> bool {
    let typed = typed.trim().to_lowercase();
    if let Some(addr) = typed.strip_prefix("smtp:") {
        return words.iter().any(|w| w == addr);
    }
    !typed.is_empty()
        && words.iter().any(|w| {
            w.starts_with(&typed)
                || w.split([' ', '.', '@'])
                    .any(|part| part.starts_with(&typed))
        })
}

fn write_mailbox(x: &mut Xml, e: &Entry) {
    x.open("t:Mailbox", &[]);
    x.leaf("t:Name", &e.name);
    x.leaf("t:EmailAddress", &e.email);
    x.leaf("t:RoutingType", "SMTP");
    x.leaf("t:MailboxType", e.kind);
    x.close("t:Mailbox");
}

/// ResolveNames: the entries matching `UnresolvedEntry`; one is Success, several
/// a Warning (ErrorNameResolutionMultipleResults), none an Error.
pub fn resolve_names(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let typed = op.child_text("UnresolvedEntry").unwrap_or("");
    let mut found: Vec<Entry> = address_list(ctx)
        .into_iter()
        .filter(|(_, w)| matches(w, typed))
        .map(|(e, _)| e)
        .collect();
    found.sort_by_key(|e| e.name.to_lowercase());
    found.truncate(100);
    let mut reply = Reply::begin(xml, "ResolveNames");
    if found.is_empty() {
        reply.fail(ResponseCode::ErrorNameResolutionNoResults);
        return reply.finish();
    }
    let total = found.len().to_string();
    let x = if found.len() == 1 {
        reply.ok()
    } else {
        let x = reply.xml();
        x.open(
            "m:ResolveNamesResponseMessage",
            &[("ResponseClass", "Warning")],
        )
        .leaf("m:MessageText", "Multiple results were found.")
        .leaf(
            "m:ResponseCode",
            ResponseCode::ErrorNameResolutionMultipleResults.as_str(),
        )
        .leaf("m:DescriptiveLinkKey", "0");
        x
    };
    x.open(
        "m:ResolutionSet",
        &[
            ("TotalItemsInView", &total),
            ("IncludesLastItemInRange", "true"),
        ],
    );
    for e in &found {
        x.open("t:Resolution", &[]);
        write_mailbox(x, e);
        x.close("t:Resolution");
    }
    x.close("m:ResolutionSet");
    reply.end();
    reply.finish();
}

/// ExpandDL: a group's direct members.
pub fn expand_dl(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    let mut reply = Reply::begin(xml, "ExpandDL");
    let address = op
        .path(&["Mailbox", "EmailAddress"])
        .map(|e| e.text.trim().to_string())
        .unwrap_or_default();
    let d = &ctx.ews.directory;
    let org = ctx.org_id();
    let group = match d.resolve_address(&address) {
        Some(crate::directory::Recipient::Group { org: o, id }) if o == org => id,
        _ => {
            reply.fail(ResponseCode::ErrorNameResolutionNoResults);
            return reply.finish();
        }
    };
    let members = d.list_group_members(org, &group).unwrap_or_default();
    let entries: Vec<Entry> = members
        .iter()
        .filter(|m| m.state == EntityState::Enabled)
        .filter_map(|m| {
            let (name, email, kind) = match m.kind {
                MemberType::User => {
                    let u = d.describe_user(org, &m.id).ok()?;
                    let name = if u.display_name.is_empty() {
                        u.base.name.clone()
                    } else {
                        u.display_name.clone()
                    };
                    (name, u.base.email?, "Mailbox")
                }
                MemberType::Group => {
                    let g = d.describe_group(org, &m.id).ok()?;
                    (g.base.name.clone(), g.base.email?, "PublicDL")
                }
            };
            Some(Entry { name, email, kind })
        })
        .collect();
    let total = entries.len().to_string();
    let x = reply.ok();
    x.open(
        "m:DLExpansion",
        &[
            ("TotalItemsInView", &total),
            ("IncludesLastItemInRange", "true"),
        ],
    );
    for e in &entries {
        write_mailbox(x, e);
    }
    x.close("m:DLExpansion");
    reply.end();
    reply.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_text_matches_word_starts_and_exact_smtp() {
        let words = vec![
            "alice liddell".to_string(),
            "alice".into(),
            "alice@acme.test".into(),
            "al@acme.test".into(),
        ];
        for hit in ["ali", "Lidd", "acme", "SMTP:al@acme.test", "alice@"] {
            assert!(matches(&words, hit), "{hit}");
        }
        for miss in ["", "bob", "smtp:ali", "iddell"] {
            assert!(!matches(&words, miss), "{miss}");
        }
    }
}
