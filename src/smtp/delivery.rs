//! Local delivery: one durable store write per message (body stored once for all
//! mailboxes, plus the sender's Sent Items copy on submission), carrying the
//! WorkMail email events of the flow into the same commit ([`super::delivery_events`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::SmtpContext;
use super::delivery_events::{EventPlan, bounce_of};
use super::message::HeaderFacts;
use super::sender_auth::{DmarcPolicy, Verdicts};
use crate::directory::Recipient;
use crate::events::email::EmailEvent;
use crate::events::new_id;
use crate::events::outbox::email_row;
use crate::store::queue::{NewOutbound, NewRecipient};
use crate::store::{FolderKind, FolderRef, OutboxEvent, Refused, Stored, Target};

/// A mailbox one accepted recipient address leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMailbox {
    pub org: String,
    pub mailbox: String,
    /// The address the events name for this mailbox.
    pub address: String,
}

/// An accepted RCPT: its address and the mailboxes it reaches (a group: several;
/// a remote recipient on submission: none, it goes to the outbound queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedRcpt {
    pub address: String,
    /// RFC 3461 NOTIFY: false when the client asked for no failure DSN.
    pub notify_failure: bool,
    pub mailboxes: Vec<LocalMailbox>,
}

/// The mailboxes behind a resolved recipient address.
pub fn mailboxes_for(ctx: &SmtpContext, address: &str, recipient: &Recipient) -> Vec<LocalMailbox> {
    let own = |org: &str, id: &str| LocalMailbox {
        org: org.into(),
        mailbox: id.into(),
        address: address.to_ascii_lowercase(),
    };
    match recipient {
        Recipient::User { org, id } | Recipient::Resource { org, id } => vec![own(org, id)],
        Recipient::Group { org, id } => ctx
            .directory
            .expand_recipients(org, id)
            .into_iter()
            .map(|user| {
                let address = ctx
                    .directory
                    .describe_user(org, &user)
                    .ok()
                    .and_then(|u| u.base.email)
                    .unwrap_or_else(|| address.to_ascii_lowercase());
                LocalMailbox {
                    org: org.clone(),
                    mailbox: user,
                    address,
                }
            })
            .collect(),
    }
}

/// Where a recipient address leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Mailboxes here (one, or a group's members).
    Local(Vec<LocalMailbox>),
    /// Another domain: the outbound queue (submission with a smarthost only).
    Remote,
    /// A served domain without that address.
    Unknown,
    /// Another domain, but nothing may relay it (MX, or no smarthost configured).
    NoRelay,
    /// A known address with no mailbox behind it (an empty group).
    NoMailbox,
}

/// Resolves `address` (lower case) as RCPT does: the directory, then the
/// postmaster of a served domain; other domains are relayed only on submission
/// with an outbound queue.
pub fn destination(ctx: &SmtpContext, address: &str, submission: bool) -> Destination {
    let resolved = ctx.directory.resolve_address(address).or_else(|| {
        postmaster_domains(address, &ctx.hostname)
            .into_iter()
            .find_map(|domain| ctx.directory.default_postmaster(domain))
    });
    let Some(recipient) = resolved else {
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        return if ctx.directory.domain_owner(domain).is_some() {
            Destination::Unknown
        } else if submission && ctx.outbound.is_some() {
            Destination::Remote
        } else {
            Destination::NoRelay
        };
    };
    match mailboxes_for(ctx, address, &recipient) {
        m if m.is_empty() => Destination::NoMailbox,
        m => Destination::Local(m),
    }
}

/// The domains whose postmaster `address` names, most specific first: the domain of
/// `postmaster@domain` (any case), or for a bare `postmaster`, which RFC 5321 4.5.1
/// says a server must accept without a domain, the server's host name and its parent
/// (`mail.example.test` serves `example.test`).
pub fn postmaster_domains<'a>(address: &'a str, hostname: &'a str) -> Vec<&'a str> {
    match address.rsplit_once('@') {
        Some((local, domain)) if local.eq_ignore_ascii_case("postmaster") => vec![domain],
        None if address.eq_ignore_ascii_case("postmaster") => {
            let mut out = vec![hostname];
            out.extend(hostname.split_once('.').map(|(_, parent)| parent));
            out
        }
        _ => Vec::new(),
    }
}

/// Who submitted a message (submission listeners only).
#[derive(Debug, Clone)]
pub struct Submitter {
    pub org: String,
    pub user_id: String,
    /// Set when sending on behalf of another mailbox: the submitter's own address.
    pub on_behalf_of: Option<String>,
    /// Keep a copy for the submitter (SMTP always, in Sent Items; EWS as asked).
    pub sent_copy: Option<crate::submission::SavedCopy>,
}

/// What happened to each recipient.
#[derive(Debug, Default)]
pub struct Report {
    pub delivered: usize,
    /// (address, enhanced status, reason) of mailboxes that refused the message.
    pub bounced: Vec<(String, &'static str, &'static str)>,
    /// The item id of the submitter's Sent Items copy, when one was stored.
    pub sent_copy: Option<String>,
}

/// The DMARC policy organization `org` applies to a message: the sending domain's
/// policy when the message failed DMARC and `org` enforces (PutInboundDmarcSettings).
pub fn dmarc_applied(
    ctx: &SmtpContext,
    verdicts: Option<&Verdicts>,
    org: &str,
) -> Option<DmarcPolicy> {
    let policy = verdicts?.dmarc_policy?;
    ctx.directory.inbound_dmarc_enforced(org).then_some(policy)
}

/// Stores the message in every recipient mailbox (and the submitter's Sent Items),
/// and queues it for its remote recipients (`queued`), in one durable write that
/// also records the flow's email events (`submitted`: rows rendered by the
/// caller, OUTGOING_EMAIL_SUBMITTED); so once this returns, the events are as
/// durable as the message. MX mail carries its sender checks (`verdicts`): an
/// enforcing organization files a quarantined (or, among others, rejected)
/// message in Junk. An error means nothing was stored or queued.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    ctx: &SmtpContext,
    message: Arc<[u8]>,
    rcpts: &[AcceptedRcpt],
    facts: &HeaderFacts,
    submitter: Option<&Submitter>,
    queued: Option<NewOutbound>,
    verdicts: Option<&Verdicts>,
    submitted: Vec<OutboxEvent>,
) -> crate::store::Result<Report> {
    let now = crate::clock::now_ms();
    // One copy per mailbox, whichever addresses led there.
    let mut boxes: BTreeMap<&str, &LocalMailbox> = BTreeMap::new();
    for r in rcpts {
        for m in &r.mailboxes {
            boxes.entry(m.mailbox.as_str()).or_insert(m);
        }
    }
    // (organization, target) per copy: the inboxes, then the Sent Items copy.
    let mut owners: Vec<&str> = boxes.values().map(|m| m.org.as_str()).collect();
    let mut targets: Vec<Target> = boxes
        .values()
        .map(|m| Target {
            folder: FolderRef::Kind(m.mailbox.clone(), folder_for(ctx, verdicts, &m.org)),
            flags: vec![],
            properties: Vec::new(),
        })
        .collect();
    let sent_copy = submitter.is_some_and(|s| s.sent_copy.is_some());
    if let Some(s) = submitter
        && let Some(copy) = &s.sent_copy
    {
        owners.push(&s.org);
        let folder = match copy.folder {
            Some(id) => FolderRef::Id(id),
            None => FolderRef::Kind(s.user_id.clone(), FolderKind::SentItems),
        };
        let mut flags = vec!["\\Seen".to_string()];
        flags.extend(copy.flags.iter().cloned());
        targets.push(Target {
            folder,
            flags: crate::store::normalize_flags(&flags),
            properties: copy.properties.clone(),
        });
    }
    let queues = queued.is_some();
    let inbound = Inbound { verdicts, facts };
    let plan = Arc::new(plan_events(
        ctx, rcpts, inbound, submitter, &boxes, now, submitted,
    ));
    let results = store_copies(ctx, message, now, targets, &owners, queued, Some(&plan)).await?;
    if let (true, Some(outbound)) = (queues, &ctx.outbound) {
        // After the mailboxes exist: a bounce must find the sender's Inbox.
        outbound.wake.notify_one();
    }
    let rows = plan.rows(results.iter().enumerate(), true, true);
    ctx.events.emit_rows(&rows, ctx.events.recording());
    let mut report = report(&boxes, &results);
    if sent_copy && let Some(Ok(stored)) = results.get(boxes.len()) {
        report.sent_copy = Some(stored.item_id.clone());
    }
    Ok(report)
}

/// The recipient addresses (as given at RCPT) each local organization receives:
/// one ORGANIZATION_EMAIL_RECEIVED per organization names them.
pub fn recipients_by_org(rcpts: &[AcceptedRcpt]) -> BTreeMap<&str, Vec<String>> {
    let mut by_org: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in rcpts {
        for m in &r.mailboxes {
            let list = by_org.entry(m.org.as_str()).or_default();
            if !list.contains(&r.address) {
                list.push(r.address.clone());
            }
        }
    }
    by_org
}

/// Inbox, or Junk Email when the organization quarantines the message.
fn folder_for(ctx: &SmtpContext, verdicts: Option<&Verdicts>, org: &str) -> FolderKind {
    match dmarc_applied(ctx, verdicts, org) {
        Some(DmarcPolicy::Quarantine | DmarcPolicy::Reject) => FolderKind::JunkEmail,
        _ => FolderKind::Inbox,
    }
}

/// What the received-side events report about a message.
#[derive(Clone, Copy)]
struct Inbound<'a> {
    verdicts: Option<&'a Verdicts>,
    facts: &'a HeaderFacts,
}

/// Stores `message` in `targets` (`owners[i]`: the organization of target i) in one
/// write, with the outbound queue entry `queued` if any and, when the events go
/// through the outbox, the rows of `plan` the outcome calls for. A mailbox the
/// directory knows but the store has not created yet (registered before mailgate,
/// or a resource) is created and delivered to once more.
pub async fn store_copies(
    ctx: &SmtpContext,
    message: Arc<[u8]>,
    now: i64,
    targets: Vec<Target>,
    owners: &[&str],
    queued: Option<NewOutbound>,
    plan: Option<&Arc<EventPlan>>,
) -> crate::store::Result<Vec<std::result::Result<Stored, Refused>>> {
    let plan = plan.filter(|_| ctx.events.recording());
    let recorder = plan.map(EventPlan::first_write);
    let mut results = match (queued, &ctx.outbound, recorder) {
        (Some(queued), Some(outbound), recorder) => {
            outbound
                .queue
                .deliver_and_enqueue(message.clone(), now, targets.clone(), queued, recorder)
                .await?
        }
        (_, _, Some(recorder)) => {
            ctx.store
                .deliver_recording(message.clone(), now, targets.clone(), recorder)
                .await?
        }
        _ => {
            ctx.store
                .deliver(message.clone(), now, targets.clone())
                .await?
        }
    };
    let missing: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Err(Refused::NoSuchFolder)))
        .map(|(i, _)| i)
        .collect();
    if !missing.is_empty() {
        let mut retry = Vec::new();
        for &i in &missing {
            if let FolderRef::Kind(mailbox, _) = &targets[i].folder {
                ctx.store
                    .create_mailbox(mailbox, ctx.quota_bytes(owners[i], mailbox))
                    .await?;
            }
            retry.push(targets[i].clone());
        }
        let again = match plan {
            Some(plan) => {
                let recorder = plan.retry_write(missing.clone());
                ctx.store
                    .deliver_recording(message, now, retry, recorder)
                    .await?
            }
            None => ctx.store.deliver(message, now, retry).await?,
        };
        for (&i, r) in missing.iter().zip(again) {
            results[i] = r;
        }
    }
    Ok(results)
}

/// The rendered events of a local delivery (see [`EventPlan`]): for each
/// organization DMARC_POLICY_APPLIED (when it enforces) and
/// ORGANIZATION_EMAIL_RECEIVED, the caller's `submitted` rows, and per mailbox
/// copy its delivery or bounce.
fn plan_events(
    ctx: &SmtpContext,
    rcpts: &[AcceptedRcpt],
    inbound: Inbound<'_>,
    submitter: Option<&Submitter>,
    boxes: &BTreeMap<&str, &LocalMailbox>,
    now: i64,
    submitted: Vec<OutboxEvent>,
) -> EventPlan {
    let trace = new_id();
    let facts = inbound.facts;
    // Internal (submitted) mail is not checked: the sender authenticated.
    let verdict = |f: fn(&Verdicts) -> &'static str| inbound.verdicts.map_or("NONE", f).to_string();
    let mut always = submitted;
    for (org, recipients) in recipients_by_org(rcpts) {
        if let Some(policy) = dmarc_applied(ctx, inbound.verdicts, org) {
            let event = EmailEvent::DmarcPolicyApplied {
                from: facts.from.clone(),
                recipients: recipients.clone(),
                policy: policy.as_str().into(),
            };
            // No organization: only the sinks' own filters route it (as before).
            always.push(email_row("", &trace, &event));
        }
        let event = EmailEvent::OrganizationEmailReceived {
            recipients,
            sender: submitter.and_then(|s| s.on_behalf_of.clone()),
            from: facts.from.clone(),
            subject: facts.subject.clone(),
            message_id: facts.message_id.clone().unwrap_or_default(),
            spam_verdict: "PASS".into(),
            dkim_verdict: verdict(|v| v.dkim.as_str()),
            dmarc_verdict: verdict(|v| v.dmarc.as_str()),
            dmarc_policy: inbound
                .verdicts
                .and_then(|v| v.dmarc_policy)
                .map(|p| p.as_str().into()),
            spf_verdict: verdict(|v| v.spf.as_str()),
            message_timestamp: now,
        };
        always.push(email_row(org, &trace, &event));
    }
    let copies = boxes
        .values()
        .map(|m| {
            let folder = match folder_for(ctx, inbound.verdicts, &m.org) {
                FolderKind::JunkEmail => "Junk",
                _ => "Inbox",
            };
            (m.org.clone(), m.address.clone(), folder)
        })
        .collect();
    EventPlan::new(trace, always, copies)
}

/// What happened to each mailbox copy (`results` in `boxes` order).
fn report(
    boxes: &BTreeMap<&str, &LocalMailbox>,
    results: &[std::result::Result<Stored, Refused>],
) -> Report {
    let mut report = Report::default();
    for (m, result) in boxes.values().zip(results) {
        match result {
            Ok(_) => report.delivered += 1,
            Err(refused) => {
                let (status, reason) = bounce_of(refused);
                report.bounced.push((m.address.clone(), status, reason));
            }
        }
    }
    report
}

/// The SMTP envelope of a message.
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    pub from: &'a str,
    /// RFC 3461 ENVID.
    pub envelope_id: Option<&'a str>,
    pub rcpts: &'a [AcceptedRcpt],
}

/// Returns a DSN (RFC 3464) for each recipient whose mailbox refused the message
/// after the transaction was accepted (RFC 5321 6.1: once 250 is said, a failure
/// is reported to the envelope sender). A local sender finds it in its Inbox; a
/// remote one gets it through the smarthost with a null sender, so a DSN never
/// causes another. None for a null sender or NOTIFY without FAILURE. A remote
/// sender without a configured smarthost gets none (logged). An error means the
/// DSN was not stored (the message itself is, so the caller still says 250:
/// a retry would duplicate it in every other mailbox).
pub async fn return_refused(
    ctx: &SmtpContext,
    envelope: Envelope<'_>,
    report: &Report,
    message: &[u8],
    arrival_ms: i64,
) -> crate::store::Result<()> {
    if envelope.from.is_empty() {
        return Ok(());
    }
    let sender_boxes = ctx
        .directory
        .resolve_address(envelope.from)
        .map(|r| mailboxes_for(ctx, envelope.from, &r))
        .unwrap_or_default();
    for (address, status, reason) in &report.bounced {
        let wanted = envelope
            .rcpts
            .iter()
            .find(|r| r.address.eq_ignore_ascii_case(address))
            .is_none_or(|r| r.notify_failure);
        if !wanted {
            continue;
        }
        let code = if *status == "5.2.2" { 552 } else { 550 };
        let diagnostic = format!("{code} {status} {reason}");
        let failure = super::queue::dsn::Failure {
            reporting_mta: &ctx.hostname,
            remote_mta: &ctx.hostname,
            sender: envelope.from,
            envelope_id: envelope.envelope_id,
            recipient: address,
            status,
            diagnostic: &diagnostic,
            arrival_ms,
        };
        let now = crate::clock::now_ms();
        let dsn: Arc<[u8]> = match super::queue::dsn::build(&failure, message, now / 1000) {
            Ok(d) => Arc::from(d),
            Err(e) => {
                tracing::error!(error = %e, "cannot build a DSN");
                continue;
            }
        };
        if !sender_boxes.is_empty() {
            let owners: Vec<&str> = sender_boxes.iter().map(|m| m.org.as_str()).collect();
            let targets = sender_boxes
                .iter()
                .map(|m| Target {
                    folder: FolderRef::Kind(m.mailbox.clone(), FolderKind::Inbox),
                    flags: vec![],
                    properties: Vec::new(),
                })
                .collect();
            store_copies(ctx, dsn, now, targets, &owners, None, None).await?;
        } else if let Some(outbound) = &ctx.outbound {
            let queued = NewOutbound {
                sender: String::new(),
                on_behalf_of: None,
                from_header: format!("MAILER-DAEMON@{}", ctx.hostname),
                message_id: String::new(),
                owner_org: String::new(),
                owner_mailbox: String::new(),
                trace_id: new_id(),
                envelope_id: None,
                recipients: vec![NewRecipient {
                    address: envelope.from.to_string(),
                    notify_failure: false,
                }],
                body: dsn.clone(),
            };
            outbound
                .queue
                .deliver_and_enqueue(dsn, now, Vec::new(), queued, None)
                .await?;
            outbound.wake.notify_one();
        } else {
            tracing::warn!(sender = envelope.from, recipient = %address, "no smarthost configured: the DSN for a refused recipient cannot be returned");
        }
    }
    Ok(())
}

/// The outbound-queue entry for the remote recipients (those without a local
/// mailbox) of a submitted message; `None` when there are none or no relay.
pub fn outbound_message(
    ctx: &SmtpContext,
    message: Arc<[u8]>,
    envelope: Envelope<'_>,
    submitter: &Submitter,
    facts: &HeaderFacts,
    trace_id: String,
) -> Option<NewOutbound> {
    let recipients: Vec<NewRecipient> = envelope
        .rcpts
        .iter()
        .filter(|r| r.mailboxes.is_empty())
        .map(|r| NewRecipient {
            address: r.address.clone(),
            notify_failure: r.notify_failure,
        })
        .collect();
    if ctx.outbound.is_none() || recipients.is_empty() {
        return None;
    }
    Some(NewOutbound {
        sender: envelope.from.to_string(),
        on_behalf_of: submitter.on_behalf_of.clone(),
        from_header: facts.from.clone(),
        message_id: facts.message_id.clone().unwrap_or_default(),
        owner_org: submitter.org.clone(),
        owner_mailbox: submitter.user_id.clone(),
        trace_id,
        envelope_id: envelope.envelope_id.map(str::to_string),
        recipients,
        body: message,
    })
}
