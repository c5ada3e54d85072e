#!/usr/bin/env bash
# SMTP ingest when DNS is slow or dead (not a test; never run in CI).
#
# The sender checks (SPF, DKIM, DMARC) of every MX message need DNS. Three runs
# of the same smtp-source load against mailgate, each on a fresh data directory:
#   1. resolver = "static": no DNS at all (the benchmark's usual setting);
#   2. a loopback DNS stub that answers NXDOMAIN (no SOA, as many zones do) and
#      drops 5% of the queries;
#   3. a loopback DNS stub that never answers, in two phases: a first batch
#      (the failures are learnt, each message waits at most the check deadline),
#      then the timed batch (failures answered from memory).
# Prints messages/s and the ratios to the static run (targets: >= 0.5 for both),
# and the slowest reply seen in the dead-DNS first batch (target: within the
# deadline, [smtp.sender_auth] timeout_ms, 4 s by default).
#
# Usage: bash tests/load/dns.sh [MESSAGES] [SESSIONS]   (defaults 5000 20)
# Environment: SKIP_BUILD=1 (use target/release/mailgate as it is).
# Needs: python3 (the stub), apt-get + dpkg-deb (smtp-source, extracted from
# the postfix .deb into target/load/, never installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
messages=${1:-5000}
sessions=${2:-20}
for v in "$messages" "$sessions"; do
    [[ $v =~ ^[1-9][0-9]{0,8}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS]" >&2; exit 2; }
done
die() { echo "dns.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"

bin=$root/target/release/mailgate
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked
[ -x "$bin" ] || die "$bin missing"
mkdir -p "$root/target/load"
deb=$(ls "$root"/target/load/postfix_*.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
    (cd "$root/target/load" && timeout 300 apt-get -o APT::Sandbox::User=root download postfix) || die "apt-get download postfix failed"
    deb=$(ls "$root"/target/load/postfix_*.deb | tail -n 1)
fi
work=$(mktemp -d "$root/target/load/dns.XXXXXX")
pf=$work/postfix-pkg
dpkg-deb -x "$deb" "$pf" || die "dpkg-deb failed"
mg_pid=""
stub_pid=""
cleanup() {
    local rc=$?
    set +e
    [ -n "$mg_pid" ] && stop_pid "$mg_pid"
    [ -n "$stub_pid" ] && stop_pid "$stub_pid"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stub PORT DROP: a UDP DNS server on 127.0.0.1:PORT answering every query
# NXDOMAIN without an SOA, dropping each with probability DROP (1 = never answers).
# It stops by itself after an hour.
stub() {
    timeout 3600 python3 - "$1" "$2" <<'PY' &
import random, socket, struct, sys
port, drop = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
while True:
    data, peer = s.recvfrom(4096)
    if len(data) < 12 or random.random() < drop:
        continue
    end = 12
    while end < len(data) and data[end] != 0:
        end += data[end] + 1
    end += 5  # the root label, QTYPE, QCLASS
    flags = 0x8180 | (data[2] & 0x01) << 8 | 3  # response, RD copied, RA, NXDOMAIN
    s.sendto(data[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0) + data[12:end], peer)
PY
    stub_pid=$!
}

# mailgate SECTION: starts mailgate with this [smtp.sender_auth] body and a
# mailbox sink@load.test; sets smtp_port.
mailgate() {
    local mg=$work/mg-$RANDOM
    mkdir -p "$mg"
    mx_config "$mg" "$1"
    serve_mailgate "$bin" "$mg" || die "mailgate did not start"
    smtp_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$mg/data/run/ports.json")
    sink_user "$bin" "$mg" || die "admin calls failed"
    wait_port "$smtp_port" "$mg_pid" 10 || die "mailgate smtp not accepting"
}

# load COUNT: smtp-source against mailgate; sets load_rate.
load() {
    local t0 t1
    t0=$(now)
    LD_LIBRARY_PATH=$pf/usr/lib/postfix timeout 900 "$pf/usr/sbin/smtp-source" \
        -s "$sessions" -m "$1" -l 5120 -M remote.test -f load@remote.test -t sink@load.test \
        "127.0.0.1:$smtp_port" >"$work/source.log" 2>&1 || { cat "$work/source.log" >&2; die "smtp-source failed"; }
    t1=$(now)
    load_rate=$(rate "$1" "$t0" "$t1")
    note "$1 messages in $(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", e - s }') s: $load_rate msg/s"
}

# slowest MESSAGES: the slowest of MESSAGES one-message sessions (swaks-like, by
# smtp-source -s 1 -m 1), in seconds: what a sender waits for its 250.
slowest() {
    local worst=0 t0 t1 d i
    for ((i = 0; i < $1; i++)); do
        t0=$(now)
        LD_LIBRARY_PATH=$pf/usr/lib/postfix timeout 60 "$pf/usr/sbin/smtp-source" -s 1 -m 1 -l 512 \
            -M remote.test -f load@remote.test -t sink@load.test "127.0.0.1:$smtp_port" >/dev/null 2>&1 || die "a message got no reply within 60 s"
        t1=$(now)
        d=$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.2f", e - s }')
        worst=$(awk -v a="$worst" -v b="$d" 'BEGIN { print (b > a) ? b : a }')
    done
    echo "$worst"
}

echo "SMTP ingest with slow and dead DNS: $messages messages x 5120 bytes, $sessions sessions"
echo "[1/3] resolver = \"static\" (no DNS)"
mailgate 'resolver = "static"'
load "$messages"
static_rate=$load_rate
stop_pid "$mg_pid"; mg_pid=""

echo "[2/3] system resolver pointed at a stub that drops 5% of queries"
stub_port=$(free_port)
stub "$stub_port" 0.05
mailgate "nameservers = [\"127.0.0.1:$stub_port\"]"
load "$messages"
drop_rate=$load_rate
stop_pid "$mg_pid"; mg_pid=""
stop_pid "$stub_pid"; stub_pid=""

echo "[3/3] system resolver pointed at a stub that never answers"
stub_port=$(free_port)
stub "$stub_port" 1
mailgate "nameservers = [\"127.0.0.1:$stub_port\"]"
worst=$(slowest 5)
note "first messages: slowest reply ${worst} s (deadline 4 s)"
load "$messages"
dead_rate=$load_rate
stop_pid "$mg_pid"; mg_pid=""

r_drop=$(ratio "$drop_rate" "$static_rate")
r_dead=$(ratio "$dead_rate" "$static_rate")
echo "messages/s: static $static_rate, 5% dropped $drop_rate, dead DNS (after its first messages) $dead_rate"
echo "5% dropped / static = ${r_drop}x (target >= 0.5): $(meets "$r_drop" 0.5)"
echo "dead DNS / static = ${r_dead}x (target >= 0.5): $(meets "$r_dead" 0.5)"
echo "dead DNS: slowest of the first replies ${worst} s (target: within the 4 s deadline): $(awk -v w="$worst" 'BEGIN { print (w <= 4.5) ? "met" : "BELOW target" }')"
