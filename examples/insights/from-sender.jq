# All mail the organization received from a sender (an address or a domain,
# case-insensitive), with its trace (Insights: ORGANIZATION_EMAIL_RECEIVED,
# `event.from like ...`).
# jq -c --arg sender alice@example.test -f from-sender.jq email.jsonl
select(.event.eventName == "ORGANIZATION_EMAIL_RECEIVED"
       and (.event.from | ascii_downcase | contains($sender | ascii_downcase)))
| {traceId, eventTimestamp, from: .event.from, recipients: .event.recipients,
   subject: .event.subject, messageId: .event.messageId}
