#!/usr/bin/env bash
# Event sinks under SMTP ingest (a benchmark script; not a test, never run in CI).
#
# The same smtp-source load (Postfix's generator) against mailgate's MX listener
# four times, each daemon started fresh:
#   1. sinks off: one sink whose filter takes nothing (records are built but
#      never queued or written);
#   2. local sinks: the two JSON-lines files and a stdout sink (to /dev/null);
#   3. all on: those plus an HTTP sink POSTing to a small Python receiver on
#      loopback (ratio to 1);
#   4. the HTTP sink's receiver down for the whole load (everything it would
#      get goes to the spool): the rate against run 2, the run without that
#      sink (target within 10%); then the receiver comes back, and the time
#      until the spool is empty gives the records/s one HTTP sink absorbs;
#      every record is checked to have arrived (by id).
#
# Usage: bash tests/load/events.sh [MESSAGES] [SESSIONS] [SIZE_BYTES]
#        (defaults 20000 20 5120)
# Environment:
#   SKIP_BUILD=1        use target/release/mailgate as it is (no cargo build)
#   SMTP_SOURCE=PATH    smtp-source binary; default: from the postfix .deb that
#                       tests/load/smtp.sh caches in target/load/ (apt-get download)
# Needs: python3, curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
messages=${1:-20000}
sessions=${2:-20}
size=${3:-5120}
for v in "$messages" "$sessions" "$size"; do
    [[ $v =~ ^[1-9][0-9]{0,8}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS] [SIZE_BYTES]" >&2; exit 2; }
done
die() { echo "events.sh: error: $*" >&2; exit 1; }
. "$root/tests/load/common.sh"
command -v python3 >/dev/null || die "needs python3"
command -v curl >/dev/null || die "needs curl"

bin=$root/target/release/mailgate
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked
[ -x "$bin" ] || die "$bin missing"

mkdir -p "$root/target/load"
work=$(mktemp -d "$root/target/load/events.XXXXXX")
smtp_source "$work" || die "apt-get download postfix failed; or set SMTP_SOURCE"

pids=()
cleanup() {
    local rc=$? p
    set +e
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

# The receiver: counts records and distinct ids; GET /count answers "records ids".
cat >"$work/receiver.py" <<'PY'
import http.server, json, sys, threading
lock = threading.Lock(); ids = set(); records = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global records
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            for line in body.splitlines():
                r = json.loads(line); records += 1
                ids.add(r.get("eventId") or r.get("event_id"))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def do_GET(self):
        with lock: text = f"{records} {len(ids)}\n".encode()
        self.send_response(200); self.send_header("Content-Length", str(len(text))); self.end_headers()
        self.wfile.write(text)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
recv_port=$(free_port)
recv_pid=""
start_receiver() {
    python3 "$work/receiver.py" "$recv_port" &
    recv_pid=$!; pids+=("$recv_pid")
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$recv_port/count" >/dev/null && return 0; sleep 0.1; done
    die "receiver did not start"
}
stop_receiver() { kill -TERM "$recv_pid"; wait "$recv_pid" 2>/dev/null || true; }

# start_mailgate DIR EVENTS_TOML: sets mg_pid, smtp_port, metrics_port.
start_mailgate() {
    local dir=$1
    mkdir -p "$dir"
    cat >"$dir/mailgate.toml" <<EOF
[server]
hostname = "localhost"
data_dir = "$dir/data"
default_domain = "load.test"
shutdown_grace_secs = 5
[listeners.smtp]
address = "127.0.0.1"
port = 0
tls = "starttls"
[listeners.https]
address = "127.0.0.1"
port = 0
tls = "implicit"
[listeners.metrics]
address = "127.0.0.1"
port = 0
tls = "none"
# No DNS from a benchmark: sender checks against an empty static zone.
[smtp.sender_auth]
resolver = "static"
$2
EOF
    local started=0
    serve_mailgate "$bin" "$dir" || started=1
    pids+=("$mg_pid") # stopped on exit, also when it never got ready
    [ "$started" = 0 ] || die "mailgate did not start"
    smtp_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$dir/data/run/ports.json")
    metrics_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metrics"])' "$dir/data/run/ports.json")
    admin() { timeout 60 "$bin" admin "$@" --data-dir "$dir/data"; }
    org=$(admin ListOrganizations | python3 -c 'import json,sys; print(json.load(sys.stdin)["OrganizationSummaries"][0]["OrganizationId"])')
    user=$(admin CreateUser --organization-id "$org" --name sink --display-name Sink --password 'Corr3ct-Horse-Battery' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["UserId"])')
    admin RegisterToWorkMail --organization-id "$org" --entity-id "$user" --email sink@load.test >/dev/null
}
stop_mailgate() { kill -TERM "$mg_pid"; wait "$mg_pid" 2>/dev/null || true; }
metric() { curl -sf "http://127.0.0.1:$metrics_port/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
load() {
    LD_LIBRARY_PATH=$src_lib timeout 600 "$source_bin" -s "$sessions" -m "$messages" -l "$size" -M remote.test \
        -f load@remote.test -t sink@load.test "127.0.0.1:$smtp_port" >/dev/null
}

off='[events]
[[events.sinks]]
name = "nothing"
kind = "stdout"
email_events = []
audit_logs = []'
local_sinks='[events]
email_log = "events/email.jsonl"
audit_log = "events/audit.jsonl"
[[events.sinks]]
name = "out"
kind = "stdout"'
on="$local_sinks
[[events.sinks]]
name = \"siem\"
kind = \"http\"
url = \"http://127.0.0.1:$recv_port/ingest\"
retry_initial_ms = 50
retry_max_ms = 1000"

echo "SMTP ingest with event sinks: $messages messages x $size bytes, $sessions sessions ($(nproc) cores shared with the generator)"
echo "[1/4] sinks off"
start_mailgate "$work/off" "$off"
t0=$(now); load; t1=$(now); stop_mailgate
off_rate=$(rate "$messages" "$t0" "$t1"); echo "  $off_rate msg/s"

echo "[2/4] local sinks only (2 files, stdout)"
start_mailgate "$work/local" "$local_sinks"
t0=$(now); load; t1=$(now); stop_mailgate
local_rate=$(rate "$messages" "$t0" "$t1"); echo "  $local_rate msg/s"

echo "[3/4] all sinks on (2 files, stdout, HTTP to a live receiver)"
start_receiver
start_mailgate "$work/on" "$on"
t0=$(now); load; t1=$(now)
on_rate=$(rate "$messages" "$t0" "$t1"); echo "  $on_rate msg/s"
echo "  on/off: $(ratio "$on_rate" "$off_rate")"
echo "  dropped: $(curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep '^mailgate_events_sink_dropped_total' | awk '{ s += $2 } END { print s + 0 }')"
stop_mailgate; stop_receiver

echo "[4/4] HTTP sink outage: the receiver is down for the whole load, then comes back"
start_mailgate "$work/http" "$on"
t0=$(now); load; t1=$(now)
outage_rate=$(rate "$messages" "$t0" "$t1")
echo "  $outage_rate msg/s during the outage; vs without the HTTP sink [2/4]: $(ratio "$outage_rate" "$local_rate") (target >= 0.90)"
expected=$(metric 'mailgate_events_sink_spooled_total{sink="siem"}')
echo "  spooled: $expected records, $(metric 'mailgate_events_sink_spool_bytes{sink="siem"}') bytes"
start_receiver
t0=$(now)
for _ in $(seq 6000); do
    [ "$(metric 'mailgate_events_sink_spool_bytes{sink="siem"}')" = "0" ] && break
    sleep 0.1
done
t1=$(now)
read -r got distinct < <(curl -sf "http://127.0.0.1:$recv_port/count")
echo "  drained in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", e - s }') s: $(rate "$distinct" "$t0" "$t1") records/s; $distinct distinct ids of $expected spooled ($got received)"
[ "$distinct" -ge "${expected%.*}" ] || die "records missing at the receiver"
stop_mailgate
