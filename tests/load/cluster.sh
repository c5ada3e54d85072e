#!/usr/bin/env bash
# Scale-out benchmark (issue 19; not a test, never run in CI).
#
# The same smtp-source load (Postfix's generator, as tests/load/smtp.sh) into one
# mailbox, in one run, against:
#   1. one daemon on SQLite (the embedded default);
#   2. one daemon on PostgreSQL;
#   3. two daemons (A and B, separate data_dirs) on one PostgreSQL database,
#      the load split in two halves sent at the same time, one to each.
# PostgreSQL is a private server (tests/pg.sh: initdb in a temp dir, 127.0.0.1,
# a free high port, fsync and synchronous_commit on), stopped by pid at the end.
# Prints msg/s, transactions/s (pg_stat_database.xact_commit over the run: every
# committed transaction, each single-statement read included) and the
# server connections the daemons held at the end of each run, and the ratios
# PostgreSQL/SQLite and two daemons/one. Every run is verified: the mailbox holds
# every message that got a 250.
#
# Then the IMAP workload of tests/load/imap.sh (examples/imap_bench: LOGIN,
# SELECT, FETCH headers, 20 STOREs, APPEND, 5 FETCH BODY[], LOGOUT per round)
# against the same three targets, the sessions split between A and B in run 3,
# all on one mailbox; prints commands/s.
#
# On this 2-core machine the point is the cost per message and that nothing
# collapses, not absolute scale-out (generator, daemons and PostgreSQL share the
# same two cores).
#
# Usage: bash tests/load/cluster.sh [MESSAGES] [SESSIONS] [SIZE_BYTES]
#        (defaults 5000 20 5120; IMAP: IMAP_MESSAGES=1000 IMAP_SESSIONS=10
#        IMAP_ROUNDS=5, IMAP_SESSIONS=0 skips it)
# Environment: SKIP_BUILD=1 uses target/release/mailgate as it is;
#              RUN_TIMEOUT=600 seconds allowed per timed run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

messages=${1:-5000}
sessions=${2:-20}
size=${3:-5120}
run_timeout=${RUN_TIMEOUT:-600}
for v in "$messages" "$sessions" "$size" "$run_timeout"; do
    [[ $v =~ ^[1-9][0-9]{0,8}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS] [SIZE_BYTES] (positive integers)" >&2; exit 2; }
done
[ "$sessions" -ge 2 ] || { echo "SESSIONS must be at least 2 (split between two daemons)" >&2; exit 2; }

die() { echo "cluster.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", e - s }'; }

bin=$root/target/release/mailgate
bench=$root/target/release/examples/imap_bench
imap_messages=${IMAP_MESSAGES:-1000}
imap_sessions=${IMAP_SESSIONS:-10}
imap_rounds=${IMAP_ROUNDS:-5}
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --bin mailgate --example imap_bench
fi
[ -x "$bin" ] || die "$bin missing: run cargo build --release --locked"
[ "$imap_sessions" = 0 ] || [ -x "$bench" ] || die "$bench missing: cargo build --release --example imap_bench"
[ "$(id -u)" = 0 ] || die "run as root (the private PostgreSQL runs as the postgres user)"

mkdir -p "$root/target/load"
work=$(mktemp -d "$root/target/load/cluster.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    pg_stop
    rm -rf "$work"
    exit "$rc"
}
# shellcheck source=tests/pg.sh
. "$root/tests/pg.sh" # starts the private server, exports MAILGATE_TEST_POSTGRES
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pgbin=$(pg_bindir)
psql() { "$pgbin/psql" -qAt "$@"; }

smtp_source "$work" || die "no smtp-source (apt-get download postfix failed)"

# database NAME: creates it; prints its URL.
database() {
    psql "$MAILGATE_TEST_POSTGRES" -c "CREATE DATABASE $1" >/dev/null || return 1
    echo "${MAILGATE_TEST_POSTGRES%/*}/$1"
}

# daemon DIR [URL]: a mailgate with the MX and https listeners in DIR, on
# PostgreSQL at URL (SQLite without); sets mg_pid and smtp_port.
daemon() {
    local dir=$1 url=${2:-}
    mkdir -p "$dir"
    mx_config "$dir" 'resolver = "static"'
    if [ -n "$url" ]; then
        printf '\n[store]\nbackend = "postgres"\nurl = "%s"\n' "$url" >>"$dir/mailgate.toml"
    fi
    serve_mailgate "$bin" "$dir" || die "mailgate did not start in $dir"
    pids+=("$mg_pid")
    smtp_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"])' "$dir/data/run/ports.json")
}

# load PORT COUNT SESSIONS LOG: one smtp-source run (background; sets load_pid).
load() {
    LD_LIBRARY_PATH=$src_lib timeout "$run_timeout" "$source_bin" \
        -s "$3" -m "$2" -l "$size" -M remote.test \
        -f load@remote.test -t sink@load.test "127.0.0.1:$1" >"$4" 2>&1 &
    load_pid=$!
}

# commits DB: transactions committed in DB so far.
commits() { psql "$MAILGATE_TEST_POSTGRES" -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'"; }
# connections DB: server connections open to DB now.
connections() { psql "$MAILGATE_TEST_POSTGRES" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'"; }
# stored URL: messages in the store of URL.
stored() { psql "$1" -c "SELECT count(*) FROM messages"; }

echo "scale-out: $messages messages x $size bytes into one mailbox, $sessions smtp-source sessions (split between the daemons in run 3)"
echo "note: generator, daemons and PostgreSQL share this machine's $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ------------------------------------------------------------ 1. SQLite
echo "[1/3] one daemon on SQLite"
daemon "$work/sqlite"
sink_user "$bin" "$work/sqlite" || die "creating sink@load.test failed"
t0=$(now)
load "$smtp_port" "$messages" "$sessions" "$work/sqlite.log"
wait "$load_pid" || { cat "$work/sqlite.log" >&2; die "smtp-source against SQLite failed"; }
t1=$(now)
sqlite_rate=$(rate "$messages" "$t0" "$t1")
stop_pid "${pids[-1]}"
count=$(python3 - "$work/sqlite/data/store.sqlite" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM messages").fetchone()[0])
PY
) || count="?"
[ "$count" = "$messages" ] || die "SQLite holds $count messages, expected $messages"
note "$messages in $(secs "$t0" "$t1") s: $sqlite_rate msg/s; verified $count stored"
echo

# ------------------------------------------------------------ 2. one daemon on PostgreSQL
echo "[2/3] one daemon on PostgreSQL"
url=$(database mg_one) || die "CREATE DATABASE failed"
daemon "$work/pg-one" "$url"
sink_user "$bin" "$work/pg-one" || die "creating sink@load.test failed"
c0=$(commits mg_one)
t0=$(now)
load "$smtp_port" "$messages" "$sessions" "$work/pg-one.log"
wait "$load_pid" || { cat "$work/pg-one.log" >&2; die "smtp-source against PostgreSQL failed"; }
t1=$(now)
c1=$(commits mg_one)
conns_one=$(connections mg_one)
pg_rate=$(rate "$messages" "$t0" "$t1")
pg_commits=$(rate "$((c1 - c0))" "$t0" "$t1")
stop_pid "${pids[-1]}"
count=$(stored "$url")
[ "$count" = "$messages" ] || die "PostgreSQL holds $count messages, expected $messages"
note "$messages in $(secs "$t0" "$t1") s: $pg_rate msg/s, $pg_commits xacts/s, $conns_one connections; verified $count stored"
echo

# ------------------------------------------------------------ 3. two daemons, one PostgreSQL
echo "[3/3] two daemons on one PostgreSQL database"
url=$(database mg_two) || die "CREATE DATABASE failed"
daemon "$work/pg-a" "$url"
port_a=$smtp_port
daemon "$work/pg-b" "$url"
port_b=$smtp_port
sink_user "$bin" "$work/pg-a" || die "creating sink@load.test failed"
half=$((messages / 2))
c0=$(commits mg_two)
t0=$(now)
load "$port_a" "$half" "$((sessions / 2))" "$work/pg-a.log"
pid_a=$load_pid
load "$port_b" "$((messages - half))" "$((sessions - sessions / 2))" "$work/pg-b.log"
pid_b=$load_pid
# B must know the user A created: the directory reaches B within a second, and
# smtp-source starts after that (sink_user ran first); a refusal fails the run.
wait "$pid_a" || { cat "$work/pg-a.log" >&2; die "smtp-source against daemon A failed"; }
wait "$pid_b" || { cat "$work/pg-b.log" >&2; die "smtp-source against daemon B failed"; }
t1=$(now)
c1=$(commits mg_two)
conns_two=$(connections mg_two)
two_rate=$(rate "$messages" "$t0" "$t1")
two_commits=$(rate "$((c1 - c0))" "$t0" "$t1")
stop_pid "${pids[-1]}"
stop_pid "${pids[-2]}"
count=$(stored "$url")
[ "$count" = "$messages" ] || die "PostgreSQL holds $count messages, expected $messages"
note "$messages in $(secs "$t0" "$t1") s: $two_rate msg/s, $two_commits xacts/s, $conns_two connections; verified $count stored"
echo

# ------------------------------------------------------------ IMAP
imap_rates=()
if [ "$imap_sessions" != 0 ]; then
    "$bin" gen-cert --out "$work/certs" --host localhost >/dev/null || die "gen-cert failed"
    ca=$work/certs/ca.pem
    iuser=bench@load.test
    ipass='Corr3ct-Horse-Battery'
    # imap_daemon DIR [URL]: an IMAPS + https daemon; sets mg_pid and imaps_port.
    imap_daemon() {
        mkdir -p "$1"
        imaps_config "$1" "$work/certs"
        if [ -n "${2:-}" ]; then
            printf '\n[store]\nbackend = "postgres"\nurl = "%s"\n' "$2" >>"$1/mailgate.toml"
        fi
        serve_mailgate "$bin" "$1" || die "mailgate did not start in $1"
        pids+=("$mg_pid")
        imaps_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imaps"])' "$1/data/run/ports.json")
    }
    # imap_bench NAME PORTS...: fills through the first, then runs the sessions
    # split over the ports at once; prints commands/s (all commands / longest run).
    imap_bench() {
        local name=$1 i=0 n per ops=0 secs=0 out runs=()
        shift
        timeout "$run_timeout" "$bench" fill --addr "127.0.0.1:$1" --ca "$ca" --user "$iuser" --pass "$ipass" \
            --count "$imap_messages" >"$work/fill-$name.log" 2>&1 || { cat "$work/fill-$name.log" >&2; return 1; }
        per=$((imap_sessions / $#))
        for port in "$@"; do
            timeout "$run_timeout" "$bench" run --addr "127.0.0.1:$port" --ca "$ca" --user "$iuser" --pass "$ipass" \
                --sessions "$per" --rounds "$imap_rounds" >"$work/run-$name-$i.log" 2>&1 &
            runs+=($!)
            i=$((i + 1))
        done
        for n in "${runs[@]}"; do
            wait "$n" || { cat "$work"/run-"$name"-*.log >&2; return 1; }
        done
        for ((n = 0; n < i; n++)); do
            out=$(cat "$work/run-$name-$n.log")
            ops=$(awk -v a="$ops" '{ for (k = 1; k <= NF; k++) { split($k, kv, "="); if (kv[1] == "ops") print a + kv[2] } }' <<<"$out")
            secs=$(awk -v a="$secs" '{ for (k = 1; k <= NF; k++) { split($k, kv, "="); if (kv[1] == "secs") print (kv[2] > a ? kv[2] : a) } }' <<<"$out")
        done
        awk -v o="$ops" -v s="$secs" 'BEGIN { printf "%.1f", o / s }'
    }
    echo "IMAP: $imap_messages messages, $imap_sessions sessions x $imap_rounds rounds, one mailbox, implicit TLS"
    imap_daemon "$work/imap-sqlite"
    imap_user "$bin" "$work/imap-sqlite" "$ca" "$iuser" "$ipass" || die "creating $iuser failed"
    r=$(imap_bench sqlite "$imaps_port") || die "IMAP workload against SQLite failed"
    imap_rates+=("$r")
    stop_pid "${pids[-1]}"
    note "one daemon, SQLite: ${imap_rates[0]} commands/s"
    url=$(database mg_imap_one) || die "CREATE DATABASE failed"
    imap_daemon "$work/imap-pg-one" "$url"
    imap_user "$bin" "$work/imap-pg-one" "$ca" "$iuser" "$ipass" || die "creating $iuser failed"
    r=$(imap_bench pg-one "$imaps_port") || die "IMAP workload against PostgreSQL failed"
    imap_rates+=("$r")
    stop_pid "${pids[-1]}"
    note "one daemon, PostgreSQL: ${imap_rates[1]} commands/s"
    url=$(database mg_imap_two) || die "CREATE DATABASE failed"
    imap_daemon "$work/imap-pg-a" "$url"
    port_a=$imaps_port
    imap_daemon "$work/imap-pg-b" "$url"
    port_b=$imaps_port
    imap_user "$bin" "$work/imap-pg-a" "$ca" "$iuser" "$ipass" || die "creating $iuser failed"
    sleep 1 # the user reaches B within a second
    r=$(imap_bench pg-two "$port_a" "$port_b") || die "IMAP workload against two daemons failed"
    imap_rates+=("$r")
    stop_pid "${pids[-1]}"
    stop_pid "${pids[-2]}"
    note "two daemons, one PostgreSQL: ${imap_rates[2]} commands/s"
    echo
fi

echo "messages/s ($messages x $size bytes, one mailbox, $sessions sessions):"
printf '  %-36s %10s %12s %12s\n' "" "msg/s" "xacts/s" "connections"
printf '  %-36s %10s %12s %12s\n' "one daemon, SQLite" "$sqlite_rate" "-" "-"
printf '  %-36s %10s %12s %12s\n' "one daemon, PostgreSQL" "$pg_rate" "$pg_commits" "$conns_one"
printf '  %-36s %10s %12s %12s\n' "two daemons, one PostgreSQL" "$two_rate" "$two_commits" "$conns_two"
echo "PostgreSQL/SQLite = $(ratio "$pg_rate" "$sqlite_rate")x; two daemons/one = $(ratio "$two_rate" "$pg_rate")x"
if [ ${#imap_rates[@]} = 3 ]; then
    echo "IMAP commands/s: SQLite ${imap_rates[0]}, PostgreSQL ${imap_rates[1]}, two daemons ${imap_rates[2]};" \
        "PostgreSQL/SQLite = $(ratio "${imap_rates[1]}" "${imap_rates[0]}")x; two daemons/one = $(ratio "${imap_rates[2]}" "${imap_rates[1]}")x"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
