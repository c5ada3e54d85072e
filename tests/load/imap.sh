#!/usr/bin/env bash
# IMAP benchmark (not a test; never run in CI).
#
# The same IMAP workload (examples/imap_bench.rs, over implicit TLS, the server
# certificate verified) against two servers, one after the other:
#   1. mailgate: the IMAPS listener over its SQLite store;
#   2. Dovecot (Debian's dovecot-imapd): a private instance on a high loopback
#      port with its own config file, Maildir storage, default fsync policy.
# Both hold the same user with the same argon2id password hash (so a LOGIN
# costs the same) and the same MESSAGES messages, filled by APPEND.
# One round of a session: LOGIN, SELECT INBOX, FETCH the headers of every
# message, 20 STOREs, 1 APPEND, 5 full-body FETCHes, LOGOUT (30 commands).
# Prints commands/s for each and the ratio mailgate/dovecot (target >= 1.0).
# Then IDLE_CONNECTIONS sessions sit in IDLE on mailgate; prints its RSS
# (target under 200 MiB for 10,000).
#
# Usage: bash tests/load/imap.sh [MESSAGES] [SESSIONS] [ROUNDS] [IDLE_CONNECTIONS]
#        (defaults 1000 10 5 10000; IDLE_CONNECTIONS 0 skips the IDLE part)
# Environment: SKIP_BUILD=1 uses target/release/{mailgate,examples/imap_bench}
# as they are. RUN_TIMEOUT=600 seconds allowed per timed run.
#
# Needs root: installs dovecot-imapd noninteractively if `dovecot` is missing
# (with a policy-rc.d that keeps Debian from starting the system service, which
# is stopped if it runs anyway); nothing of it is enabled or configured outside
# the temporary directory under target/load/, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

messages=${1:-1000}
sessions=${2:-10}
rounds=${3:-5}
idle_conns=${4:-10000}
run_timeout=${RUN_TIMEOUT:-600}
for v in "$messages" "$sessions" "$rounds" "$run_timeout"; do
    [[ $v =~ ^[1-9][0-9]{0,6}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS] [ROUNDS] [IDLE_CONNECTIONS]" >&2; exit 2; }
done
[[ $idle_conns =~ ^[0-9]{1,5}$ ]] || { echo "IDLE_CONNECTIONS: 0-99999" >&2; exit 2; }

die() { echo "imap.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"

[ "$(id -u)" = 0 ] || die "run as root (installs dovecot-imapd; Dovecot drops privileges)"
command -v python3 >/dev/null || die "needs python3"
bin=$root/target/release/mailgate
bench=$root/target/release/examples/imap_bench
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --bin mailgate --example imap_bench
fi
[ -x "$bin" ] && [ -x "$bench" ] || die "build target/release/mailgate and examples/imap_bench first"

if ! command -v dovecot >/dev/null; then
    echo "installing dovecot-imapd (noninteractive; the system service is kept stopped)"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends dovecot-imapd >/dev/null ||
        { rm -f /usr/sbin/policy-rc.d; die "apt-get install dovecot-imapd failed (try apt-get update first)"; }
    rm -f /usr/sbin/policy-rc.d
fi
dovecot_version=$(dovecot --version | cut -d' ' -f1)

start_work imap

user=bench@load.test
pass='Corr3ct-Horse-Battery'
"$bin" gen-cert --out "$work/certs" --host localhost >/dev/null || die "gen-cert failed"
ca=$work/certs/ca.pem
[ -s "$ca" ] || die "gen-cert wrote no $ca"
phc=$("$bench" hash --pass "$pass")

# run_bench NAME PORT -> prints the rate; the workload is identical for both.
run_bench() {
    local name=$1 port=$2 out
    timeout "$run_timeout" "$bench" fill --addr "127.0.0.1:$port" --ca "$ca" --user "$user" --pass "$pass" \
        --count "$messages" >"$work/fill-$name.log" 2>&1 || { cat "$work/fill-$name.log" >&2; return 1; }
    out=$(timeout "$run_timeout" "$bench" run --addr "127.0.0.1:$port" --ca "$ca" --user "$user" --pass "$pass" \
        --sessions "$sessions" --rounds "$rounds" 2>&1) || { echo "$out" >&2; return 1; }
    echo "$out"
}
rate_of() { awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } } END { printf "%.1f", v["ops"] / v["secs"] }' <<<"$1"; }

echo "IMAP: $messages messages of 5 KiB; $sessions sessions x $rounds rounds (LOGIN, SELECT, FETCH headers 1:*, 20 STORE, APPEND, 5 FETCH BODY[], LOGOUT); implicit TLS on 127.0.0.1"
echo "note: client and server share this machine's $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- 1. mailgate
echo "[1/2] mailgate (IMAPS, SQLite store)"
mg=$work/mailgate
mkdir -p "$mg"
imaps_config "$mg" "$work/certs"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
serve_mailgate "$bin" "$mg" || die "mailgate did not start (no data/run/ports.json within 60 s)"
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imaps"])' "$mg/data/run/ports.json") ||
    die "no imaps port in ports.json"
imap_user "$bin" "$mg" "$ca" "$user" "$pass" || die "creating $user through the admin API failed"
out=$(run_bench mailgate "$port") || { tail -20 "$mg/serve.log" >&2; die "the workload failed against mailgate"; }
mg_rate=$(rate_of "$out")
note "$out: $mg_rate commands/s; RSS after $(rss_mib "$mg_pid") MiB"
idle_line="not measured"
if [ "$idle_conns" -gt 0 ]; then
    rss0=$(rss_mib "$mg_pid")
    "$bench" idle --addr "127.0.0.1:$port" --ca "$ca" --user "$user" --pass "$pass" \
        --connections "$idle_conns" --hold 15 >"$work/idle.log" 2>&1 &
    idle_pid=$!
    for ((i = 0; i < run_timeout * 5; i++)); do
        grep -q '^idling=' "$work/idle.log" 2>/dev/null && break
        kill -0 "$idle_pid" 2>/dev/null || break
        sleep 0.2
    done
    if grep -q '^idling=' "$work/idle.log"; then
        sleep 3
        rss1=$(rss_mib "$mg_pid")
        idle_line="$idle_conns sessions in IDLE: RSS $rss1 MiB (was $rss0 MiB before; $(head -1 "$work/idle.log"))"
        note "$idle_line"
    else
        cat "$work/idle.log" >&2
        note "IDLE run failed (see above)"
    fi
    stop_pid "$idle_pid"
fi
stop_pid "$mg_pid"
mg_pid=""
echo

# ---------------------------------------------------------------- 2. Dovecot
echo "[2/2] Dovecot $dovecot_version (private instance, Maildir)"
d=$work/dovecot
dc_port=$(free_port)
dovecot_config "$d" "$work/certs" "$dc_port" "$user" "$phc"
dovecot -c "$d/dovecot.conf" || { cat "$d/dovecot.log" >&2 2>/dev/null; die "dovecot failed to start"; }
dc_conf=$d/dovecot.conf
wait_port "$dc_port" "" 30 || { tail -20 "$d/dovecot.log" >&2; die "dovecot not accepting on 127.0.0.1:$dc_port"; }
out=$(run_bench dovecot "$dc_port") || { tail -20 "$d/dovecot.log" >&2; die "the workload failed against dovecot"; }
dc_rate=$(rate_of "$out")
note "$out: $dc_rate commands/s"
echo

r=$(ratio "$mg_rate" "$dc_rate")
echo "commands/s ($sessions sessions x $rounds rounds, $messages messages):"
printf '  %-34s %10s\n' "mailgate (IMAPS, SQLite)" "$mg_rate"
printf '  %-34s %10s\n' "dovecot $dovecot_version (IMAPS, Maildir)" "$dc_rate"
echo "mailgate/dovecot = ${r}x (target >= 1.0): $(meets "$r" 1.0)"
echo "idle: $idle_line (target under 200 MiB for 10,000)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
