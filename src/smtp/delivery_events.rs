//! The email events of one local delivery, rendered before its store write so that
//! the write records, in its own commit, the ones its outcome calls for (the
//! store's outbox; see `events::outbox`). Pure: no I/O, no clock but the one the
//! rows were rendered with.
//!
//! A delivery reports, whatever its outcome, the events of its organizations
//! (DMARC_POLICY_APPLIED, ORGANIZATION_EMAIL_RECEIVED) and of its submission
//! (OUTGOING_EMAIL_SUBMITTED); then per mailbox copy MAILBOX_EMAIL_DELIVERED or
//! INCOMING_EMAIL_BOUNCED. A copy refused because its mailbox did not exist yet is
//! delivered again after the mailbox is created (`delivery::store_copies`): the
//! first write leaves it out, the second reports it.

use std::sync::Arc;

use crate::events::email::{BouncedRecipient, EmailEvent};
use crate::events::outbox::email_row;
use crate::store::{DeliveryEvents, OutboxEvent, Refused, Stored};

/// One mailbox copy of the delivery.
struct Copy {
    org: String,
    address: String,
    /// Its MAILBOX_EMAIL_DELIVERED, rendered ahead (the common outcome): the
    /// store's writer thread only picks it.
    delivered: OutboxEvent,
}

/// The rendered events of one delivery and which outcome calls for which.
pub struct EventPlan {
    trace: String,
    /// Rows every outcome reports, in order.
    always: Vec<OutboxEvent>,
    /// Per mailbox copy, in the order of the delivery's targets (a Sent Items
    /// target, if any, comes after them and has no event).
    copies: Vec<Copy>,
}

/// The enhanced status and reason a refused copy bounces with.
pub fn bounce_of(refused: &Refused) -> (&'static str, &'static str) {
    match refused {
        Refused::OverQuota => ("5.2.2", "mailbox full"),
        Refused::NoSuchFolder => ("5.1.1", "mailbox unavailable"),
    }
}

impl EventPlan {
    /// `always`: rows every outcome reports; `copies`: (organization, address,
    /// folder name) per mailbox copy, in target order.
    pub fn new(
        trace: String,
        always: Vec<OutboxEvent>,
        copies: Vec<(String, String, &'static str)>,
    ) -> EventPlan {
        let copies = copies
            .into_iter()
            .map(|(org, address, folder)| {
                let event = EmailEvent::MailboxEmailDelivered {
                    recipient: address.clone(),
                    folder: folder.into(),
                };
                Copy {
                    delivered: email_row(&org, &trace, &event),
                    org,
                    address,
                }
            })
            .collect();
        EventPlan {
            trace,
            always,
            copies,
        }
    }

    /// The rows for `outcomes` ((copy index, result) pairs), after the `always`
    /// rows when `with_always`. A copy refused for want of its mailbox reports
    /// only when `missing_is_final` (no retry follows).
    pub fn rows<'a>(
        &self,
        outcomes: impl IntoIterator<Item = (usize, &'a Result<Stored, Refused>)>,
        with_always: bool,
        missing_is_final: bool,
    ) -> Vec<OutboxEvent> {
        let mut out = if with_always {
            self.always.clone()
        } else {
            Vec::new()
        };
        for (i, result) in outcomes {
            let Some(copy) = self.copies.get(i) else {
                continue;
            };
            match result {
                Ok(_) => out.push(copy.delivered.clone()),
                Err(Refused::NoSuchFolder) if !missing_is_final => {}
                Err(refused) => {
                    let (status, reason) = bounce_of(refused);
                    let event = EmailEvent::IncomingEmailBounced {
                        bounced_recipient: BouncedRecipient {
                            email_address: copy.address.clone(),
                            reason: reason.into(),
                            status: status.into(),
                        },
                    };
                    out.push(email_row(&copy.org, &self.trace, &event));
                }
            }
        }
        out
    }

    /// What the first write records: every row but those of copies left for the retry.
    pub fn first_write(self: &Arc<Self>) -> DeliveryEvents {
        let plan = self.clone();
        Arc::new(move |results| plan.rows(results.iter().enumerate(), true, false))
    }

    /// What the retry of the copies `indices` records: their rows, final now.
    pub fn retry_write(self: &Arc<Self>, indices: Vec<usize>) -> DeliveryEvents {
        let plan = self.clone();
        Arc::new(move |results| plan.rows(indices.iter().copied().zip(results), false, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Result<Stored, Refused> {
        Ok(Stored {
            folder_id: 1,
            uidvalidity: 1,
            uid: 1,
            modseq: 1,
            item_id: "i".into(),
        })
    }

    fn plan() -> Arc<EventPlan> {
        let received = EmailEvent::MailboxEmailDelivered {
            recipient: "stand-in for RECEIVED".into(),
            folder: "x".into(),
        };
        Arc::new(EventPlan::new(
            "t-1".into(),
            vec![email_row("m-1", "t-1", &received)],
            vec![
                ("m-1".into(), "a@x.test".into(), "Inbox"),
                ("m-1".into(), "b@x.test".into(), "Junk"),
                ("m-2".into(), "c@y.test".into(), "Inbox"),
            ],
        ))
    }

    fn names(rows: &[OutboxEvent]) -> Vec<(String, String)> {
        rows.iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.line).unwrap();
                let who = v["event"]["recipient"]
                    .as_str()
                    .or(v["event"]["bouncedRecipient"]["emailAddress"].as_str())
                    .unwrap()
                    .to_string();
                (r.kind.clone(), who)
            })
            .collect()
    }

    #[test]
    fn the_outcome_picks_the_rows_and_a_missing_mailbox_waits_for_its_retry() {
        let plan = plan();
        let first = [
            stored(),
            Err(Refused::OverQuota),
            Err(Refused::NoSuchFolder),
        ];
        let rows = (plan.first_write())(&first);
        assert_eq!(
            names(&rows),
            [
                (
                    "MAILBOX_EMAIL_DELIVERED".into(),
                    "stand-in for RECEIVED".into()
                ),
                ("MAILBOX_EMAIL_DELIVERED".into(), "a@x.test".into()),
                ("INCOMING_EMAIL_BOUNCED".into(), "b@x.test".into()),
            ],
            "c@y.test waits for the retry"
        );
        assert_eq!(rows[2].org, "m-1");
        // The same outcome again (a batch run twice) gives the same ids.
        assert_eq!((plan.first_write())(&first)[1], rows[1]);
        let retry = (plan.retry_write(vec![2]))(&[Err(Refused::NoSuchFolder)]);
        assert_eq!(
            names(&retry),
            [("INCOMING_EMAIL_BOUNCED".into(), "c@y.test".into())]
        );
        assert_eq!(retry[0].org, "m-2");
        let retry = (plan.retry_write(vec![2]))(&[stored()]);
        assert_eq!(
            names(&retry),
            [("MAILBOX_EMAIL_DELIVERED".into(), "c@y.test".into())]
        );
    }

    #[test]
    fn targets_beyond_the_copies_have_no_rows() {
        let plan = plan();
        // Three copies and a Sent Items copy.
        let rows = (plan.first_write())(&[stored(), stored(), stored(), stored()]);
        assert_eq!(rows.len(), 4, "RECEIVED and three deliveries");
        let v: serde_json::Value = serde_json::from_str(&rows[2].line).unwrap();
        assert_eq!(v["event"]["folder"], "Junk");
        assert_eq!(v["traceId"], "t-1");
        assert!(v["eventId"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(
            plan.rows([(7, &stored())], false, true).is_empty(),
            "no such copy"
        );
    }
}
