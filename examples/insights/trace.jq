# Every event of one message flow, oldest first (WorkMail Insights:
# `filter traceId = "$TRACEID" | sort @timestamp`).
# jq -c --arg trace TRACEID -f trace.jq email.jsonl
select(.traceId == $trace)
