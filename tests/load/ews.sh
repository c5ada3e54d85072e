#!/usr/bin/env bash
# EWS benchmark (issue 18; not a test, never run in CI).
#
# A release build of mailgate on 127.0.0.1 (MX, IMAPS and https listeners on
# kernel-chosen ports, `[ews] enabled = true`, static resolver), one user whose
# Inbox smtp-source fills with MESSAGES messages of 5 KiB; then, with the client
# in tests/load/ews_bench.py (TLS verified, Basic auth, keep-alive):
#   1. throughput: CLIENTS client processes share FindItem pages of 100 (Default
#      shape) over the whole folder, GetItem of batches of 100 ids (Default shape;
#      exchangelib's Message fields; Default + MimeContent), ROUNDS times each,
#      and one client runs SyncFolderItems of the whole folder from an empty state:
#      ops/s, items/s, p50 and p99 per operation;
#   2. EWS vs IMAP on one connection each: wire bytes (both directions, TLS
#      payload) to list the folder (FindItem Default pages of 100 vs one UID FETCH
#      of UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE; each listed twice, cold and
#      warm, since both cache per message analysis) and to fetch every message
#      (GetItem IdOnly + MimeContent, batches of 100 vs FETCH BODY.PEEK[] of 100),
#      and the issue's figure: EWS/IMAP whole-message bytes/s (target >= 0.5x);
#   3. SMTP 250 -> streaming NewMailEvent latency over PROBES messages sent one
#      at a time (target p99 < 100 ms);
#   4. SUBSCRIPTIONS streaming subscriptions (Subscribe + GetStreamingEvents held
#      open, one connection each) from a separate client process: the daemon's
#      RSS growth (target under 50 MiB), then step 3 again while they are open
#      (each of them must see every probe).
#
# Usage: bash tests/load/ews.sh [MESSAGES] [CLIENTS] [ROUNDS] [SUBSCRIPTIONS] [PROBES]
#        (defaults 10000 4 2 1000 200)
# Environment: SKIP_BUILD=1 uses target/release/mailgate as it is, MAILGATE_BIN=PATH
#   that build (no cargo build either way);
#   SMTP_SOURCE=PATH (else the postfix .deb cached in target/load/, as events.sh);
#   PYTHON=... (default target/interop-venv/bin/python, else python3; exchangelib
#   supplies its field list when present); RUN_TIMEOUT=900 seconds per step.
# Everything lives in a temporary directory under target/load/, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

messages=${1:-10000}
clients=${2:-4}
rounds=${3:-2}
subs=${4:-1000}
probes=${5:-200}
run_timeout=${RUN_TIMEOUT:-900}
for v in "$messages" "$clients" "$rounds" "$subs" "$probes" "$run_timeout"; do
    [[ $v =~ ^[1-9][0-9]{0,5}$ ]] || { echo "usage: $0 [MESSAGES] [CLIENTS] [ROUNDS] [SUBSCRIPTIONS] [PROBES]" >&2; exit 2; }
done

die() { echo "ews.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"
field() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

command -v python3 >/dev/null || die "needs python3"
py=${PYTHON:-$root/target/interop-venv/bin/python}
[ -x "$py" ] || py=python3
bin=${MAILGATE_BIN:-$root/target/release/mailgate}
[ -n "${SKIP_BUILD:-}${MAILGATE_BIN:-}" ] || cargo build --release --locked --bin mailgate
[ -x "$bin" ] || die "$bin missing: run cargo build --release --locked"

start_work ews
sub_pid=""
stop_subs() { [ -z "$sub_pid" ] || stop_pid "$sub_pid"; sub_pid=""; }
# stop_work reads the exit status from $?; set +e so that restoring it is no error.
trap 'rc=$?; set +e; stop_subs; (exit $rc); stop_work' EXIT
smtp_source "$work" || die "apt-get download postfix failed; or set SMTP_SOURCE"

user=bench@load.test
pass='Corr3ct-Horse-Battery'
"$bin" gen-cert --out "$work/certs" --host localhost >/dev/null || die "gen-cert failed"
ca=$work/certs/ca.pem
mg=$work/mailgate
mkdir -p "$mg"
imaps_config "$mg" "$work/certs"
mx_listener_toml >>"$mg/mailgate.toml"
cat >>"$mg/mailgate.toml" <<EOF

[ews]
enabled = true

# No DNS from a benchmark: sender checks against an empty static zone.
[smtp.sender_auth]
resolver = "static"
EOF
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
serve_mailgate "$bin" "$mg" || die "mailgate did not start (no data/run/ports.json within 60 s)"
port_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$mg/data/run/ports.json" "$1"; }
https=$(port_of https) && imaps=$(port_of imaps) && smtp=$(port_of smtp) || die "ports.json lacks a listener"
imap_user "$bin" "$mg" "$ca" "$user" "$pass" || die "creating $user through the admin API failed"
bench() { timeout "$run_timeout" "$py" "$root/tests/load/ews_bench.py" "$1" --port "$https" --imap-port "$imaps" \
    --smtp-port "$smtp" --ca "$ca" --user "$user" --password "$pass" --messages "$messages" "${@:2}"; }

echo "EWS: $messages messages of 5 KiB in one Inbox; $clients client processes; TLS on 127.0.0.1, Basic auth, keep-alive"
echo "note: client and server share this machine's $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- fill
echo "[0/4] fill: smtp-source, 20 sessions"
t0=$(now)
LD_LIBRARY_PATH=$src_lib timeout "$run_timeout" "$source_bin" -s 20 -m "$messages" -l 5120 -M remote.test \
    -f load@remote.test -t "$user" -S "ews load" "127.0.0.1:$smtp" >/dev/null || die "smtp-source failed"
t1=$(now)
have=$(bench count) || die "FindItem count failed"
[ "$have" = "$messages" ] || die "the Inbox holds $have messages, expected $messages"
note "$messages messages in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", e - s }') s ($(rate "$messages" "$t0" "$t1") msg/s); RSS $(rss_mib "$mg_pid") MiB"
echo

# ---------------------------------------------------------------- 1. throughput
echo "[1/4] throughput ($clients clients, $rounds rounds over the folder; SyncFolderItems: one client)"
bench throughput --clients "$clients" --rounds "$rounds" >"$work/throughput.log" 2>&1 ||
    { cat "$work/throughput.log" >&2; tail -20 "$mg/serve.log" >&2; die "throughput run failed"; }
sed 's/^/  /' "$work/throughput.log"
echo

# ---------------------------------------------------------------- 2. bytes
echo "[2/4] EWS vs IMAP, one connection each: list and fetch all $messages messages"
bench bytes >"$work/bytes.log" 2>&1 || { cat "$work/bytes.log" >&2; die "bytes run failed"; }
sed 's/^/  /' "$work/bytes.log"
list_line=$(grep '^list ' "$work/bytes.log")
fetch_line=$(grep '^fetch ' "$work/bytes.log")
rate_ratio=$(field rate_ratio <<<"$fetch_line")
echo

# ---------------------------------------------------------------- 3. latency
echo "[3/4] SMTP 250 -> streaming NewMailEvent, $probes messages one at a time, one subscription"
bench latency --messages "$probes" >"$work/latency.log" 2>&1 || { cat "$work/latency.log" >&2; die "latency run failed"; }
sed 's/^/  /' "$work/latency.log"
lat1=$(grep '^latency ' "$work/latency.log")
echo

# ---------------------------------------------------------------- 4. subscriptions
echo "[4/4] $subs streaming subscriptions from a separate process"
sleep 2
rss0=$(rss_mib "$mg_pid")
"$py" "$root/tests/load/ews_bench.py" subscriptions --port "$https" --ca "$ca" --user "$user" --password "$pass" \
    --count "$subs" --hold "$run_timeout" >"$work/subs.log" 2>&1 &
sub_pid=$!
for ((i = 0; i < run_timeout * 5; i++)); do
    grep -q '^streams=' "$work/subs.log" 2>/dev/null && break
    kill -0 "$sub_pid" 2>/dev/null || break
    sleep 0.2
done
opened=$(grep '^streams=' "$work/subs.log" | field streams)
[ "${opened:-0}" = "$subs" ] || { cat "$work/subs.log" >&2; die "only ${opened:-0} of $subs streams opened"; }
sleep 3
rss1=$(rss_mib "$mg_pid")
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.1f", b - a }')
note "$(grep '^streams=' "$work/subs.log"): RSS $rss0 -> $rss1 MiB (+$growth MiB, $(awk -v g="$growth" -v n="$subs" 'BEGIN { printf "%.0f", g * 1024 / n }') KiB each)"
note "latency again with the $subs streams open:"
bench latency --messages "$probes" >"$work/latency2.log" 2>&1 || { cat "$work/latency2.log" >&2; die "latency run failed"; }
sed 's/^/    /' "$work/latency2.log"
lat2=$(grep '^latency ' "$work/latency2.log")
rss2=$(rss_mib "$mg_pid")
stop_subs
closing=$(grep '^closed ' "$work/subs.log" || true)
note "${closing:-subscriptions process gave no closing line}; RSS after the probes $rss2 MiB"
events=$(field new_mail_events <<<"$closing")
delivered=$(field messages <<<"$lat2")
[ "${events:-0}" = "$((subs * delivered))" ] || note "WARNING: expected $((subs * delivered)) events on the $subs streams, got ${events:-0}"
echo

# ---------------------------------------------------------------- summary
echo "summary ($messages messages, $clients clients, $(nproc) cores shared with the clients):"
printf '  %-46s %9s %9s %9s %9s\n' operation ops/s items/s p50_ms p99_ms
while read -r ln; do
    printf '  %-46s %9s %9s %9s %9s\n' "$(field op <<<"$ln")" "$(field ops_s <<<"$ln")" "$(field items_s <<<"$ln")" \
        "$(field p50_ms <<<"$ln")" "$(field p99_ms <<<"$ln")"
done < <(grep '^op=' "$work/throughput.log")
echo "  list, wire bytes EWS/IMAP: $(field ews_bytes <<<"$list_line") / $(field imap_bytes <<<"$list_line") = $(field bytes_ratio <<<"$list_line")x; warm secs EWS $(field ews_secs <<<"$list_line"), IMAP $(field imap_secs <<<"$list_line")"
echo "  fetch, wire bytes EWS/IMAP: $(field ews_bytes <<<"$fetch_line") / $(field imap_bytes <<<"$fetch_line") = $(field bytes_ratio <<<"$fetch_line")x; secs EWS $(field ews_secs <<<"$fetch_line"), IMAP $(field imap_secs <<<"$fetch_line")"
echo "  whole messages, bytes/s EWS/IMAP: $(field ews_mib_s <<<"$fetch_line") / $(field imap_mib_s <<<"$fetch_line") MiB/s = ${rate_ratio}x (target >= 0.5): $(meets "$rate_ratio" 0.5)"
p99a=$(field p99_ms <<<"$lat1")
p99b=$(field p99_ms <<<"$lat2")
echo "  SMTP 250 -> stream event p99: $p99a ms alone, $p99b ms with $subs streams open (target < 100): $(lt "$p99a" 100 && lt "$p99b" 100 && echo met || echo ABOVE target)"
echo "  $subs streaming subscriptions: RSS +$growth MiB over $rss0 MiB (target < 50): $(lt "$growth" 50 && echo met || echo ABOVE target)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
