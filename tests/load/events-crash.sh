#!/usr/bin/env bash
# Crash test of the event outbox (issue 20 item 9; a script, not a benchmark):
# smtp-source pushes mail at the release daemon's MX listener, the daemon is
# killed with SIGKILL mid-run, restarted, and the same again (KILLS times); then
# the daemon drains its outbox and stops. Checks, from the store and the event
# files:
#   - every message in the store (every acknowledged message is there, and some
#     stored but not yet acknowledged) has its ORGANIZATION_EMAIL_RECEIVED (by
#     Message-Id) and a MAILBOX_EMAIL_DELIVERED of the same traceId;
#   - no event without its message (nothing recorded for a write that was undone);
#   - every line of every sink file is one whole JSON record, and each event id
#     occurs once per sink file (email.jsonl*, audit.jsonl*);
#   - the outbox is empty after the drain.
# A kill -9 shows atomicity and the resume (the page cache survives a killed
# process); durability of the commit itself is the store's (tests/load/README).
#
# Usage: bash tests/load/events-crash.sh [MESSAGES] [SESSIONS] [KILLS]
#        (defaults 20000 20 3; each run is killed 0.8-2.0 s in)
# Environment: SKIP_BUILD=1 uses target/release/mailgate as it is;
#              MAILGATE_BIN=PATH runs another build (e.g. one from before the outbox).
# Needs: the postfix .deb cached in target/load/ (tests/load/smtp.sh fetches it;
# only extracted, never installed), python3. Bounded: every wait has a timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
messages=${1:-20000}
sessions=${2:-20}
kills=${3:-3}
for v in "$messages" "$sessions" "$kills"; do
    [[ $v =~ ^[1-9][0-9]{0,6}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS] [KILLS]" >&2; exit 2; }
done
die() { echo "events-crash.sh: error: $*" >&2; exit 1; }
. "$root/tests/load/common.sh"

bin=${MAILGATE_BIN:-$root/target/release/mailgate}
[ -n "${SKIP_BUILD:-}${MAILGATE_BIN:-}" ] || cargo build --release --locked
[ -x "$bin" ] || die "$bin missing: run cargo build --release --locked"
command -v python3 >/dev/null || die "needs python3"
deb=$(ls "$root"/target/load/postfix_*.deb 2>/dev/null | tail -n 1 || true)
[ -n "$deb" ] || die "no postfix_*.deb in target/load/ (run tests/load/smtp.sh once, or apt-get download postfix there)"

mkdir -p "$root/target/load"
work=$(mktemp -d "$root/target/load/crash.XXXXXX")
mg_pid=""
source_pid=""
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "$source_pid" ] && kill -KILL "$source_pid" 2>/dev/null && wait "$source_pid" 2>/dev/null
    [ -n "$mg_pid" ] && stop_pid "$mg_pid"
    if [ "$rc" = 0 ] || [ -n "${KEEP:-}" ]; then
        [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
    else
        echo "left for inspection: $work" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pf=$work/postfix-pkg
dpkg-deb -x "$deb" "$pf" || die "dpkg-deb -x $deb failed"
mkdir -p "$work/mg"
mx_config "$work/mg" 'resolver = "static"'

start() {
    [ -f "$work/mg/serve.log" ] && cat "$work/mg/serve.log" >>"$work/mg/serve-all.log"
    rm -f "$work/mg/data/run/ports.json"
    serve_mailgate "$bin" "$work/mg" || die "mailgate did not start"
    smtp_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$work/mg/data/run/ports.json")
    wait_port "$smtp_port" "$mg_pid" 10 || die "the smtp listener does not accept"
}

start
sink_user "$bin" "$work/mg" || die "cannot create sink@load.test"
for ((k = 1; k <= kills; k++)); do
    delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.8 + (r % 1200) / 1000 }')
    LD_LIBRARY_PATH=$pf/usr/lib/postfix timeout 120 "$pf/usr/sbin/smtp-source" \
        -s "$sessions" -m "$messages" -l 2048 -M remote.test \
        -f load@remote.test -t sink@load.test "127.0.0.1:$smtp_port" >"$work/source-$k.log" 2>&1 &
    source_pid=$!
    sleep "$delay"
    kill -KILL "$mg_pid"
    wait "$mg_pid" 2>/dev/null || true
    mg_pid=""
    wait "$source_pid" 2>/dev/null || true # it fails: its server died
    source_pid=""
    echo "  run $k: mailgate killed with SIGKILL ${delay} s into a $messages-message run"
    start
done

# Drain: wait (bounded) until the outbox is empty, then stop cleanly.
store=$work/mg/data/store.sqlite
for ((i = 0; i < 300; i++)); do
    left=$(python3 - "$store" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
try:
    print(c.execute("SELECT count(*) FROM outbox").fetchone()[0])
except sqlite3.OperationalError:  # a build without the outbox: wait for its sinks
    print(0)
PY
    ) || left=unknown
    [ "$left" = 0 ] && break
    sleep 0.2
done
sleep 1
stop_pid "$mg_pid"
mg_pid=""
skipped=$(cat "$work/mg/serve-all.log" "$work/mg/serve.log" | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'already_written=[0-9]*' | cut -d= -f2 | paste -sd+ | bc 2>/dev/null || echo 0)
echo "  on restarts, ${skipped:-0} records were already in a sink file and were not written again"

python3 - "$work/mg/data" <<'PY'
import email.parser, glob, json, re, sqlite3, sys
from collections import Counter
data = sys.argv[1]
fail = []
c = sqlite3.connect(f"file:{data}/store.sqlite?mode=ro", uri=True)
try:
    left = c.execute("SELECT count(*) FROM outbox").fetchone()[0]
except sqlite3.OperationalError:
    left = 0
if left:
    fail.append(f"{left} rows still in the outbox after the drain")
mids = []
parser = email.parser.BytesHeaderParser()
for (body,) in c.execute(
        "SELECT b.data FROM messages m JOIN bodies b ON b.id = m.body_id "
        "JOIN folders f ON f.id = m.folder_id WHERE f.kind = 'inbox'"):
    mid = parser.parsebytes(bytes(body)).get("Message-Id", "").strip().strip("<>")
    mids.append(mid)
if not mids or any(not m for m in mids):
    fail.append("stored messages without a Message-Id: cannot match them to events")

def records(pattern, id_key):
    out, per_file = [], {}
    for path in sorted(glob.glob(pattern)):
        ids = Counter()
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    fail.append(f"{path}:{n}: torn last line")
                try:
                    rec = json.loads(line)
                except ValueError:
                    fail.append(f"{path}:{n}: not one JSON record")
                    continue
                ids[rec[id_key]] += 1
                out.append(rec)
        dup = {i: k for i, k in ids.items() if k > 1}
        if dup:
            fail.append(f"{path}: {len(dup)} event ids more than once, e.g. {next(iter(dup))}")
        per_file[path] = sum(ids.values())
    return out, per_file

emails, email_files = records(f"{data}/events/email.jsonl*", "eventId")
audits, audit_files = records(f"{data}/events/audit.jsonl*", "event_id")
received = {}
delivered = Counter()
for r in emails:
    e = r["event"]
    if e["eventName"] == "ORGANIZATION_EMAIL_RECEIVED":
        received.setdefault(e["messageId"].strip("<>"), []).append(r["traceId"])
    elif e["eventName"] == "MAILBOX_EMAIL_DELIVERED":
        delivered[r["traceId"]] += 1
stored = Counter(mids)
missing_r = [m for m in stored if len(received.get(m, [])) < stored[m]]
missing_d = [m for m in stored
             if sum(delivered[t] for t in received.get(m, [])) < stored[m]]
orphans = [m for m in received if m not in stored]
if missing_r:
    fail.append(f"{len(missing_r)} stored messages without ORGANIZATION_EMAIL_RECEIVED, e.g. {missing_r[0]}")
if missing_d:
    fail.append(f"{len(missing_d)} stored messages without MAILBOX_EMAIL_DELIVERED, e.g. {missing_d[0]}")
if orphans:
    fail.append(f"{len(orphans)} RECEIVED events of messages not in the store, e.g. {orphans[0]}")
print(f"  store: {len(mids)} messages in the Inbox ({len(stored)} distinct Message-Ids)")
print(f"  email events: {len(emails)} records in {len(email_files)} file(s), "
      f"{sum(len(v) for v in received.values())} RECEIVED, {sum(delivered.values())} DELIVERED")
print(f"  audit events: {len(audits)} records in {len(audit_files)} file(s)")
if fail:
    print("FAIL:\n  " + "\n  ".join(fail))
    sys.exit(1)
print("PASS: every stored message has its RECEIVED and DELIVERED events; each event id once per sink file; outbox drained")
PY
