//! What Outlook asks before composing: GetServiceConfiguration (the MailTips,
//! Unified Messaging and protection-rules configuration, per
//! `RequestedConfiguration`) and GetMailTips (per recipient: does the address
//! exist, is the mailbox full, how many people a group reaches, the largest
//! message accepted), answered from the directory, the store's quotas and
//! `limits.max_message_size`.
//!
//! Parsing the request into [`Wanted`] and [`Tips`] and deciding what to say of a
//! recipient ([`Said`]) are pure; the operations only look things up and write.

use super::flat::Flat;
use crate::directory::{Directory, Recipient};
use crate::ews::codes::ResponseCode;
use crate::ews::context::Context;
use crate::ews::xml::{Element, Xml};

/// Recipients one GetMailTips request may name (Exchange's default).
pub const MAX_MAIL_TIPS_RECIPIENTS: usize = 50;
/// Recipients beyond which Outlook warns of a large audience (Exchange's default).
const LARGE_AUDIENCE_THRESHOLD: &str = "25";
/// Hours between two protection-rules requests (there are none to refresh).
const PROTECTION_RULES_REFRESH_HOURS: &str = "24";

/// The configurations a GetServiceConfiguration request names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub mail_tips: bool,
    pub unified_messaging: bool,
    pub protection_rules: bool,
}

/// `RequestedConfiguration/ConfigurationName`s; `Err` names the first value the
/// schema does not allow, or says that none was given. `PolicyNudges` (and
/// `SharePointURLs`) are accepted and have nothing to say here.
pub fn wanted(op: &Element) -> Result<Wanted, String> {
    let mut w = Wanted::default();
    let names: Vec<&str> = op
        .child("RequestedConfiguration")
        .map(|r| {
            r.children_named("ConfigurationName")
                .map(|c| c.text.trim())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        return Err("RequestedConfiguration names no ConfigurationName.".into());
    }
    for name in names {
        match name {
            "MailTips" => w.mail_tips = true,
            "UnifiedMessagingConfiguration" => w.unified_messaging = true,
            "ProtectionRules" => w.protection_rules = true,
            "PolicyNudges" | "SharePointURLs" => {}
            other => return Err(format!("Unknown ConfigurationName '{other}'.")),
        }
    }
    Ok(w)
}

/// The mail tips a GetMailTips request asks for (`MailTipsRequested`, a
/// space-separated list; `All` is every one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tips {
    pub out_of_office: bool,
    pub mailbox_full: bool,
    pub custom: bool,
    pub external_members: bool,
    pub total_members: bool,
    pub max_message_size: bool,
    pub delivery_restriction: bool,
    pub moderation: bool,
    pub invalid_recipient: bool,
}

/// Parses `MailTipTypes`; `Err` names a value the schema does not allow.
pub fn tips(list: &str) -> Result<Tips, String> {
    let mut t = Tips::default();
    for word in list.split_ascii_whitespace() {
        match word {
            "All" => {
                t = Tips {
                    out_of_office: true,
                    mailbox_full: true,
                    custom: true,
                    external_members: true,
                    total_members: true,
                    max_message_size: true,
                    delivery_restriction: true,
                    moderation: true,
                    invalid_recipient: true,
                };
            }
            "OutOfOfficeMessage" => t.out_of_office = true,
            "MailboxFullStatus" => t.mailbox_full = true,
            "CustomMailTip" => t.custom = true,
            "ExternalMemberCount" => t.external_members = true,
            "TotalMemberCount" => t.total_members = true,
            "MaxMessageSize" => t.max_message_size = true,
            "DeliveryRestriction" => t.delivery_restriction = true,
            "ModerationStatus" => t.moderation = true,
            "InvalidRecipient" => t.invalid_recipient = true,
            // Exchange 2016's MailTipTypes adds Scope; nothing is scoped here.
            "Scope" => {}
            other => return Err(format!("Unknown MailTipsRequested value '{other}'.")),
        }
    }
    Ok(t)
}

/// What a recipient address is to this organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A user's or resource's mailbox here; `full` when its quota is used up.
    Mailbox { name: String, full: bool },
    /// A group reaching `members` mailboxes.
    Group { name: String, members: usize },
    /// An address in one of the organization's domains that names nothing
    /// (or something disabled), or no address at all: mail to it would bounce.
    Invalid,
    /// Anyone else's address.
    External,
}

/// The mail tips of one recipient, in the schema's element order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    pub name: Option<String>,
    /// `OutOfOffice` with an empty reply (no automatic replies are set here).
    pub out_of_office: bool,
    pub mailbox_full: Option<bool>,
    pub total_members: Option<usize>,
    pub external_members: Option<usize>,
    pub max_message_size: Option<u64>,
    pub delivery_restricted: Option<bool>,
    pub moderated: Option<bool>,
    pub invalid: Option<bool>,
}

/// Decides what to say of a recipient, given what was asked.
pub fn said(kind: &Kind, asked: Tips, max_message_size: u64) -> Said {
    let mut s = Said::default();
    if asked.invalid_recipient {
        s.invalid = Some(*kind == Kind::Invalid);
    }
    let (members, external) = match kind {
        Kind::Invalid => return s,
        Kind::Mailbox { name, full } => {
            s.name = Some(name.clone());
            s.out_of_office = asked.out_of_office;
            if asked.mailbox_full {
                s.mailbox_full = Some(*full);
            }
            (1, 0)
        }
        Kind::Group { name, members } => {
            s.name = Some(name.clone());
            (*members, 0)
        }
        Kind::External => (1, 1),
    };
    if asked.total_members {
        s.total_members = Some(members);
    }
    if asked.external_members {
        s.external_members = Some(external);
    }
    if asked.max_message_size && *kind != Kind::External {
        s.max_message_size = Some(max_message_size);
    }
    if asked.delivery_restriction {
        s.delivery_restricted = Some(false);
    }
    if asked.moderation {
        s.moderated = Some(false);
    }
    s
}

/// The organization's mail domains, for `InternalDomains`.
fn domains(directory: &Directory, org: &str) -> Vec<String> {
    directory
        .list_mail_domains(org)
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.name)
        .collect()
}

fn internal_domains(x: &mut Xml, domains: &[String]) {
    x.open("t:InternalDomains", &[]);
    for d in domains {
        x.empty("t:Domain", &[("Name", d), ("IncludeSubdomains", "false")]);
    }
    x.close("t:InternalDomains");
}

/// `MaxMessageSize` is an `xs:int`.
fn int(n: u64) -> String {
    n.min(i32::MAX as u64).to_string()
}

/// GetServiceConfiguration: one ServiceConfigurationResponseMessageType with
/// each configuration asked for. Unified Messaging and protection rules are
/// answered as an Exchange without them does: UM off, no rules.
pub fn get_service_configuration(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    const OP: &str = "GetServiceConfiguration";
    let wanted = match wanted(op) {
        Ok(w) => w,
        Err(why) => {
            return Flat::error(xml, OP, ResponseCode::ErrorSchemaValidation, Some(&why)).finish();
        }
    };
    let domains = domains(&ctx.ews.directory, ctx.org_id());
    let mut flat = Flat::ok(xml, OP);
    let x = flat.xml();
    x.open("m:ResponseMessages", &[]);
    x.open(
        "m:ServiceConfigurationResponseMessageType",
        &[("ResponseClass", "Success")],
    );
    x.leaf("m:ResponseCode", ResponseCode::NoError.as_str());
    if wanted.mail_tips {
        x.open("m:MailTipsConfiguration", &[]);
        x.leaf("t:MailTipsEnabled", "true");
        x.leaf(
            "t:MaxRecipientsPerGetMailTipsRequest",
            &MAX_MAIL_TIPS_RECIPIENTS.to_string(),
        );
        x.leaf("t:MaxMessageSize", &int(ctx.ews.max_message_size));
        x.leaf("t:LargeAudienceThreshold", LARGE_AUDIENCE_THRESHOLD);
        x.leaf("t:ShowExternalRecipientCount", "false");
        internal_domains(x, &domains);
        x.leaf("t:PolicyTipsEnabled", "false");
        x.leaf("t:LargeAudienceCap", LARGE_AUDIENCE_THRESHOLD);
        x.close("m:MailTipsConfiguration");
    }
    if wanted.unified_messaging {
        x.open("m:UnifiedMessagingConfiguration", &[]);
        x.leaf("t:UmEnabled", "false");
        x.leaf("t:PlayOnPhoneDialString", "");
        x.leaf("t:PlayOnPhoneEnabled", "false");
        x.close("m:UnifiedMessagingConfiguration");
    }
    if wanted.protection_rules {
        x.open(
            "m:ProtectionRulesConfiguration",
            &[("RefreshInterval", PROTECTION_RULES_REFRESH_HOURS)],
        );
        x.empty("t:Rules", &[]);
        internal_domains(x, &domains);
        x.close("m:ProtectionRulesConfiguration");
    }
    x.close("m:ServiceConfigurationResponseMessageType");
    x.close("m:ResponseMessages");
    flat.finish();
}

/// What an address is to the requester's organization.
async fn kind(ctx: &Context<'_>, address: &str, domains: &[String]) -> Kind {
    let d = &ctx.ews.directory;
    let org = ctx.org_id();
    let ours = |o: &str| o == org;
    match d.resolve_address(address) {
        Some(Recipient::User { org: o, id } | Recipient::Resource { org: o, id }) if ours(&o) => {
            let full = match ctx.ews.store.quota(&id).await {
                Ok(q) => q.limit > 0 && q.used >= q.limit,
                Err(_) => false,
            };
            let name = display_name(d, &o, &id).unwrap_or_else(|| address.to_string());
            Kind::Mailbox { name, full }
        }
        Some(Recipient::Group { org: o, id }) if ours(&o) => {
            let name = d
                .describe_group(&o, &id)
                .map(|g| g.base.name)
                .unwrap_or_else(|_| address.to_string());
            Kind::Group {
                members: d.expand_recipients(&o, &id).len(),
                name,
            }
        }
        _ => {
            let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            if domain.is_empty() || domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                Kind::Invalid
            } else {
                Kind::External
            }
        }
    }
}

/// A user's display name (else its name), or a resource's name.
fn display_name(d: &Directory, org: &str, id: &str) -> Option<String> {
    if let Ok(u) = d.describe_user(org, id) {
        return Some(if u.display_name.is_empty() {
            u.base.name
        } else {
            u.display_name
        });
    }
    d.describe_resource(org, id).ok().map(|r| r.base.name)
}

/// GetMailTips: one MailTipsResponseMessageType per recipient, in request order,
/// with only the tips asked for.
pub async fn get_mail_tips(ctx: &Context<'_>, op: &Element, xml: &mut Xml) {
    const OP: &str = "GetMailTips";
    let asked = tips(op.child_text("MailTipsRequested").unwrap_or("All"));
    let recipients: Vec<&str> = op
        .child("Recipients")
        .map(|r| {
            r.children
                .iter()
                .map(|m| m.child_text("EmailAddress").unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();
    let asked = match (asked, recipients.len()) {
        (Err(why), _) => {
            return Flat::error(xml, OP, ResponseCode::ErrorSchemaValidation, Some(&why)).finish();
        }
        (_, 0) => {
            let why = "Recipients names no Mailbox.";
            return Flat::error(xml, OP, ResponseCode::ErrorSchemaValidation, Some(why)).finish();
        }
        (_, n) if n > MAX_MAIL_TIPS_RECIPIENTS => {
            let why = format!("At most {MAX_MAIL_TIPS_RECIPIENTS} recipients per request.");
            return Flat::error(xml, OP, ResponseCode::ErrorInvalidRecipients, Some(&why)).finish();
        }
        (Ok(asked), _) => asked,
    };
    let domains = domains(&ctx.ews.directory, ctx.org_id());
    let mut flat = Flat::ok(xml, OP);
    let x = flat.xml();
    x.open("m:ResponseMessages", &[]);
    for address in recipients {
        let kind = kind(ctx, address, &domains).await;
        let s = said(&kind, asked, ctx.ews.max_message_size);
        x.open(
            "m:MailTipsResponseMessageType",
            &[("ResponseClass", "Success")],
        );
        x.leaf("m:ResponseCode", ResponseCode::NoError.as_str());
        write_tips(x, address, &s);
        x.close("m:MailTipsResponseMessageType");
    }
    x.close("m:ResponseMessages");
    flat.finish();
}

fn write_tips(x: &mut Xml, address: &str, s: &Said) {
    let bool = |b: bool| if b { "true" } else { "false" };
    x.open("m:MailTips", &[]);
    x.open("t:RecipientAddress", &[]);
    if let Some(name) = &s.name {
        x.leaf("t:Name", name);
    }
    x.leaf("t:EmailAddress", address);
    x.leaf("t:RoutingType", "SMTP");
    x.close("t:RecipientAddress");
    x.empty("t:PendingMailTips", &[]);
    if s.out_of_office {
        x.open("t:OutOfOffice", &[]);
        x.open("t:ReplyBody", &[]);
        x.leaf("t:Message", "");
        x.close("t:ReplyBody");
        x.close("t:OutOfOffice");
    }
    if let Some(full) = s.mailbox_full {
        x.leaf("t:MailboxFull", bool(full));
    }
    if let Some(n) = s.total_members {
        x.leaf("t:TotalMemberCount", &n.to_string());
    }
    if let Some(n) = s.external_members {
        x.leaf("t:ExternalMemberCount", &n.to_string());
    }
    if let Some(n) = s.max_message_size {
        x.leaf("t:MaxMessageSize", &int(n));
    }
    if let Some(b) = s.delivery_restricted {
        x.leaf("t:DeliveryRestricted", bool(b));
    }
    if let Some(b) = s.moderated {
        x.leaf("t:IsModerated", bool(b));
    }
    if let Some(b) = s.invalid {
        x.leaf("t:InvalidRecipient", bool(b));
    }
    x.close("m:MailTips");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ews::xml::parse;

    fn op(xml: &str) -> Element {
        parse(xml.as_bytes()).unwrap()
    }

    #[test]
    fn configuration_names_are_the_schemas() {
        let w = wanted(&op(
            "<GetServiceConfiguration><RequestedConfiguration><ConfigurationName>ProtectionRules</ConfigurationName><ConfigurationName> PolicyNudges </ConfigurationName></RequestedConfiguration></GetServiceConfiguration>",
        ))
        .unwrap();
        assert_eq!(
            w,
            Wanted {
                protection_rules: true,
                ..Wanted::default()
            }
        );
        for bad in [
            "<G><RequestedConfiguration><ConfigurationName>mailtips</ConfigurationName></RequestedConfiguration></G>",
            "<G><RequestedConfiguration/></G>",
            "<G/>",
        ] {
            assert!(wanted(&op(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn tip_lists_are_space_separated_and_all_means_all() {
        let t = tips(" MailboxFullStatus\tInvalidRecipient ").unwrap();
        assert!(t.mailbox_full && t.invalid_recipient);
        assert!(!t.total_members && !t.out_of_office);
        let all = tips("All").unwrap();
        assert!(all.out_of_office && all.moderation && all.max_message_size);
        assert_eq!(tips("").unwrap(), Tips::default());
        assert_eq!(tips("Scope").unwrap(), Tips::default());
        assert!(tips("All Everything").is_err());
    }

    #[test]
    fn what_is_said_depends_on_the_recipient_and_the_question() {
        let all = tips("All").unwrap();
        let mailbox = Kind::Mailbox {
            name: "Bob".into(),
            full: true,
        };
        let s = said(&mailbox, all, 1000);
        assert_eq!(s.mailbox_full, Some(true));
        assert_eq!((s.total_members, s.external_members), (Some(1), Some(0)));
        assert_eq!(s.max_message_size, Some(1000));
        assert_eq!(s.invalid, Some(false));
        assert!(s.out_of_office);

        let group = Kind::Group {
            name: "team".into(),
            members: 7,
        };
        let s = said(&group, all, 1000);
        assert_eq!((s.total_members, s.mailbox_full), (Some(7), None));
        assert!(!s.out_of_office);

        let s = said(&Kind::Invalid, all, 1000);
        assert_eq!(
            s,
            Said {
                invalid: Some(true),
                ..Said::default()
            }
        );
        let s = said(&Kind::External, all, 1000);
        assert_eq!((s.external_members, s.max_message_size), (Some(1), None));

        let only_size = tips("MaxMessageSize").unwrap();
        let s = said(&mailbox, only_size, 5);
        assert_eq!(
            s,
            Said {
                name: Some("Bob".into()),
                max_message_size: Some(5),
                ..Said::default()
            }
        );
    }

    #[test]
    fn sizes_fit_an_xs_int() {
        assert_eq!(int(40 << 20), "41943040");
        assert_eq!(int(u64::MAX), i32::MAX.to_string());
    }
}
