# Why did recipient B not get A's mail? Finds A's submissions to B (the sending
# trace) and the receiving organization's copies from A to B (the receiving trace:
# same messageId, another traceId), then prints what happened to B in either:
# MAILBOX_EMAIL_DELIVERED, INCOMING_EMAIL_BOUNCED (with status and reason),
# OUTGOING_EMAIL_SENT or OUTGOING_EMAIL_BOUNCED (with destination and reason).
# Nothing printed: no flow from A to B was recorded at all.
# jq -c -s --arg a alice@example.test --arg b bob@example.test -f why-not-delivered.jq email.jsonl
($a | ascii_downcase) as $a
| ($b | ascii_downcase) as $b
| . as $all
| [ $all[] | select((.event.eventName == "OUTGOING_EMAIL_SUBMITTED"
                     or .event.eventName == "ORGANIZATION_EMAIL_RECEIVED")
                    and (.event.from | ascii_downcase) == $a
                    and (.event.recipients | any(ascii_downcase == $b)))
          | .traceId ] as $traces
| $all[]
| select(.traceId as $t | $traces | any(. == $t))
| select(((.event.recipient // .event.bouncedRecipient.emailAddress // "") | ascii_downcase) == $b)
| {traceId, eventName: .event.eventName, recipient: (.event.recipient // .event.bouncedRecipient.emailAddress),
   folder: .event.folder, status: .event.bouncedRecipient.status,
   reason: (.event.reason // .event.bouncedRecipient.reason), destination: .event.destination}
| with_entries(select(.value != null))
