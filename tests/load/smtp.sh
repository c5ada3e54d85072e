#!/usr/bin/env bash
# SMTP ingest benchmark (not a test; never run in CI).
#
# The same smtp-source load (Postfix's generator) against three targets, one
# after the other, each started fresh and stopped before the next (smtp-sink and
# mailgate alternate ROUNDS times and their medians are compared, since the
# ceiling swings from run to run on a shared machine):
#   1. smtp-sink: accepts and discards, no storage (the generator's ceiling);
#   2. mailgate: the MX listener, durable delivery into a mailbox (250 only
#      after the fsync that covers the message);
#   3. Postfix: a private instance on 127.0.0.1 delivering with virtual(8) to
#      a Maildir, default fsync behaviour. Its 250 means "queued", so it is
#      timed until the Maildir holds every message.
# Prints messages/s for each and the ratios mailgate/postfix (target >= 1.5)
# and mailgate/smtp-sink (target >= 0.5).
#
# Usage: bash tests/load/smtp.sh [MESSAGES] [SESSIONS] [SIZE_BYTES]
#        (defaults 20000 20 5120)
# Environment:
#   SKIP_BUILD=1          use target/release/mailgate as it is (no cargo build)
#   MAILGATE_BIN=PATH     measure that build instead (no cargo build)
#   SMTP_SOURCE_OPTS=...  extra smtp-source flags for every run, e.g. "-d"
#                         (keep the connection open between messages)
#   RUN_TIMEOUT=600       seconds allowed per timed run
#   ROUNDS=3              smtp-sink/mailgate pairs (medians are compared)
#
# Needs: root (Postfix's master and smtp-sink -u), apt-get (the postfix .deb is
# fetched once with `apt-get download` and cached under target/load/; it is
# only extracted, never installed), dpkg-deb, python3 (jq optional). Creates the
# system user `postfix` and group `postdrop` if they do not exist. Everything
# else lives in a temporary directory under target/load/ (the data disk),
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

messages=${1:-20000}
sessions=${2:-20}
size=${3:-5120}
run_timeout=${RUN_TIMEOUT:-600}
rounds=${ROUNDS:-3}
source_opts=${SMTP_SOURCE_OPTS:-}
for v in "$messages" "$sessions" "$size" "$run_timeout" "$rounds"; do
    [[ $v =~ ^[1-9][0-9]{0,8}$ ]] || { echo "usage: $0 [MESSAGES] [SESSIONS] [SIZE_BYTES] (positive integers)" >&2; exit 2; }
done

die() { echo "smtp.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"
secs() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", e - s }'; }

# json FILE-OR-- FILTER: a jq-style path (.a.b, .a[0].b) read with jq or python3.
json() {
    local input=$1 path=$2
    if command -v jq >/dev/null 2>&1; then
        jq -er "$path" "$input"
    else
        python3 - "$input" "$path" <<'PY'
import json, re, sys
src, path = sys.argv[1], sys.argv[2]
v = json.load(sys.stdin if src == "-" else open(src))
for name, idx in re.findall(r"\.(\w+)|\[(\d+)\]", path):
    v = v[name] if name else v[int(idx)]
print(v)
PY
    fi
}
command -v jq >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 || die "needs jq or python3"

# ---------------------------------------------------------------- set-up
bin=${MAILGATE_BIN:-$root/target/release/mailgate}
if [ -z "${SKIP_BUILD:-}${MAILGATE_BIN:-}" ]; then
    cargo build --release --locked
fi
[ -x "$bin" ] || die "$bin missing: run cargo build --release --locked"
[ "$(id -u)" = 0 ] || die "run as root (Postfix's master and smtp-sink -u nobody need it)"

mkdir -p "$root/target/load"
deb=$(ls "$root"/target/load/postfix_*.deb 2>/dev/null | tail -n 1 || true)
if [ -z "$deb" ]; then
    echo "fetching the postfix package (apt-get download, cached in target/load/)"
    (cd "$root/target/load" && timeout 300 apt-get -o APT::Sandbox::User=root download postfix) ||
        die "apt-get download postfix failed (try apt-get update first)"
    deb=$(ls "$root"/target/load/postfix_*.deb 2>/dev/null | tail -n 1 || true)
    [ -n "$deb" ] || die "no postfix_*.deb in target/load/ after apt-get download"
fi

work=$(mktemp -d "$root/target/load/smtp.XXXXXX")
chmod 755 "$work" # the postfix user and virtual(8) (as nobody) must traverse it
sink_pid=""
mg_pid=""
source_pid=""
pf_conf=""
pf=$work/postfix-pkg
pf_lib=$pf/usr/lib/postfix

cleanup() {
    local rc=$? pid mp kids i
    set +e
    trap - EXIT INT TERM
    [ -n "$source_pid" ] && stop_pid "$source_pid"
    if [ -n "$pf_conf" ]; then
        mp=$(tr -d ' \n' < "$work/pf/spool/pid/master.pid" 2>/dev/null)
        kids=""
        [ -n "$mp" ] && kids=$(ps -o pid= --ppid "$mp" 2>/dev/null)
        LD_LIBRARY_PATH=$pf_lib timeout 60 "$pf/usr/sbin/postfix" -c "$pf_conf" stop >/dev/null 2>&1
        if [ -n "$mp" ]; then
            for ((i = 0; i < 75; i++)); do kill -0 "$mp" 2>/dev/null || break; sleep 0.2; done
            kill -0 "$mp" 2>/dev/null && kill -KILL "$mp" 2>/dev/null
        fi
        for pid in $kids; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
    fi
    [ -n "$sink_pid" ] && stop_pid "$sink_pid"
    [ -n "$mg_pid" ] && stop_pid "$mg_pid"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

dpkg-deb -x "$deb" "$pf" || die "dpkg-deb -x $deb failed"
pf_version=$(basename "$deb" | cut -d_ -f2)

# smtp_source PORT: the load, the same for every target. Run in the
# background and waited for, so that a signal interrupts the wait at once.
smtp_source() {
    local rc=0
    # shellcheck disable=SC2086 # SMTP_SOURCE_OPTS is a list of flags
    LD_LIBRARY_PATH=$pf_lib timeout "$run_timeout" "$pf/usr/sbin/smtp-source" \
        -s "$sessions" -m "$messages" -l "$size" -M remote.test \
        -f load@remote.test -t sink@load.test $source_opts "127.0.0.1:$1" &
    source_pid=$!
    wait "$source_pid" || rc=$?
    source_pid=""
    return "$rc"
}

echo "SMTP ingest: $messages messages x $size bytes, $sessions parallel sessions (smtp-source${source_opts:+ $source_opts}, plain SMTP, 127.0.0.1)"
echo "note: the load generator and each target share this machine's $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "note: postfix $pf_version tools from the Debian package (extracted, not installed)"
awk '{ exit !($1 >= 1.0) }' /proc/loadavg &&
    echo "warning: the machine is busy before the start (load average $(cut -d' ' -f1 /proc/loadavg)): other work competes for the same cores and the disk, so expect lower and noisier figures"
echo

# ---------------------------------------------------------------- 1+2. smtp-sink and mailgate
# The ceiling swings from run to run on a shared 2-core machine, so smtp-sink and
# mailgate (a fresh daemon and data directory each time) alternate ROUNDS times
# and the medians are compared.

# run_sink: one smtp-sink run; sets sink_rate.
run_sink() {
    sink_port=$(free_port) || die "no free port"
    LD_LIBRARY_PATH=$pf_lib "$pf/usr/sbin/smtp-sink" -u nobody "127.0.0.1:$sink_port" 1024 >"$work/smtp-sink.log" 2>&1 &
    sink_pid=$!
    wait_port "$sink_port" "$sink_pid" 10 || { cat "$work/smtp-sink.log" >&2; die "smtp-sink did not listen on 127.0.0.1:$sink_port"; }
    t0=$(now)
    smtp_source "$sink_port" >"$work/source-sink.log" 2>&1 || { cat "$work/source-sink.log" >&2; die "smtp-source against smtp-sink failed (or exceeded ${run_timeout}s)"; }
    t1=$(now)
    stop_pid "$sink_pid"
    sink_pid=""
    sink_rate=$(rate "$messages" "$t0" "$t1")
    note "$messages messages in $(secs "$t0" "$t1") s: $sink_rate msg/s"
}

# run_mailgate: one mailgate run on a fresh data directory; sets mg_rate.
run_mailgate() {
    mg=$work/mailgate-$round
    mkdir -p "$mg"
    # No DNS from a benchmark: the sender checks run against an empty static
    # zone (every lookup NXDOMAIN), as Postfix here checks nothing.
    mx_config "$mg" 'resolver = "static"'
    serve_mailgate "$bin" "$mg" || die "mailgate did not start (no data/run/ports.json within 60 s)"
    smtp_port=$(json "$mg/data/run/ports.json" .smtp) || die "no smtp port in ports.json"
    admin() { timeout 60 "$bin" admin "$@" --data-dir "$mg/data"; }
    sink_user "$bin" "$mg" || die "creating sink@load.test failed"
    wait_port "$smtp_port" "$mg_pid" 10 || die "mailgate smtp listener not accepting on 127.0.0.1:$smtp_port"
    t0=$(now)
    smtp_source "$smtp_port" >"$work/source-mailgate.log" 2>&1 || { cat "$work/source-mailgate.log" >&2; tail -20 "$mg/serve.log" >&2; die "smtp-source against mailgate failed (or exceeded ${run_timeout}s)"; }
    t1=$(now)
    mg_rate=$(rate "$messages" "$t0" "$t1")
    # Every 250 is durable, so the events must already agree; allow the event
    # writer up to 10 s to flush its lines.
    events=$mg/data/events/email.jsonl
    delivered=0
    for ((i = 0; i < 50; i++)); do
        delivered=$(grep -c '"eventName":"MAILBOX_EMAIL_DELIVERED"' "$events" 2>/dev/null || true)
        [ "${delivered:-0}" -ge "$messages" ] && break
        sleep 0.2
    done
    if [ "${delivered:-0}" -ne "$messages" ]; then
        tail -20 "$mg/serve.log" >&2
        die "mailgate: $events has ${delivered:-0} MAILBOX_EMAIL_DELIVERED events, expected $messages"
    fi
    admin GetMailboxDetails --organization-id "$org" --user-id "$user" >"$mg/mailbox.json" 2>/dev/null &&
        mbsize=$(json "$mg/mailbox.json" .MailboxSize 2>/dev/null) || mbsize="?"
    stop_pid "$mg_pid"
    mg_pid=""
    note "$messages messages in $(secs "$t0" "$t1") s: $mg_rate msg/s (timed to smtp-source's last reply; each 250 is durable)"
    note "verified: $delivered MAILBOX_EMAIL_DELIVERED events; MailboxSize ${mbsize} MB"
}

# median of the arguments (the middle one; the lower middle for an even count)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

sink_rates=()
mg_rates=()
for ((round = 1; round <= rounds; round++)); do
    echo "[round $round/$rounds] smtp-sink (no storage: the generator's ceiling)"
    run_sink
    sink_rates+=("$sink_rate")
    echo "[round $round/$rounds] mailgate (MX listener, durable delivery to a mailbox: 250 after fsync)"
    run_mailgate
    mg_rates+=("$mg_rate")
    note "round $round: mailgate/smtp-sink = $(ratio "$mg_rate" "$sink_rate")"
    echo
done
sink_rate=$(median "${sink_rates[@]}")
mg_rate=$(median "${mg_rates[@]}")
note "smtp-sink: ${sink_rates[*]} msg/s (median $sink_rate); mailgate: ${mg_rates[*]} msg/s (median $mg_rate)"
echo

# ---------------------------------------------------------------- 3. Postfix
echo "[3/3] Postfix $pf_version (private instance, virtual(8) to a Maildir, default fsync)"
getent group postdrop >/dev/null || groupadd --system postdrop || die "groupadd postdrop failed"
getent passwd postfix >/dev/null ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin postfix || die "useradd postfix failed"
# what `postfix check` expects of the set-gid helpers (this copy only)
chgrp postdrop "$pf/usr/sbin/postqueue" "$pf/usr/sbin/postdrop" && chmod 2755 "$pf/usr/sbin/postqueue" "$pf/usr/sbin/postdrop"
p=$work/pf
mkdir -p "$p/etc" "$p/spool" "$p/lib" "$p/mail" "$p/log"
chown postfix "$p/lib"
chown nobody: "$p/mail"
cp "$pf/etc/postfix/postfix-files" "$p/etc/"
cp "$pf/usr/share/postfix/dynamicmaps.cf" "$p/etc/"
pf_port=$(free_port) || die "no free port"
cat >"$p/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $p/spool
data_directory = $p/lib
meta_directory = $p/etc
daemon_directory = $pf/usr/lib/postfix/sbin
command_directory = $pf/usr/sbin
shlib_directory = $pf_lib
sendmail_path = $pf/usr/sbin/sendmail
newaliases_path = $pf/usr/bin/newaliases
mailq_path = $pf/usr/bin/mailq
manpage_directory = $pf/usr/share/man
html_directory = no
readme_directory = no
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH=$pf_lib
mail_owner = postfix
setgid_group = postdrop
maillog_file = $p/log/maillog
maillog_file_prefixes = $p/log
myhostname = mx.peer.test
mydomain = peer.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no
biff = no
virtual_mailbox_domains = load.test
virtual_mailbox_base = $p/mail
virtual_mailbox_maps = inline:{ sink@load.test=sink/ }
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
EOF
# Debian's master.cf without chroot, smtpd on 127.0.0.1:$pf_port only.
cat >"$p/etc/master.cf" <<EOF
127.0.0.1:$pf_port inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
lmtp       unix  - - n - - lmtp
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF
pfx() { LD_LIBRARY_PATH=$pf_lib timeout 60 "$pf/usr/sbin/postfix" -c "$p/etc" "$@"; }
pfx check >"$work/postfix-check.log" 2>&1 || { cat "$work/postfix-check.log" "$p/log/maillog" >&2 2>/dev/null; die "postfix check failed"; }
pf_conf=$p/etc
pfx start >"$work/postfix-start.log" 2>&1 || { cat "$work/postfix-start.log" "$p/log/maillog" >&2 2>/dev/null; die "postfix start failed"; }
wait_port "$pf_port" "" 30 || { tail -20 "$p/log/maillog" >&2; die "postfix smtpd not accepting on 127.0.0.1:$pf_port"; }
maildir=$p/mail/sink
t0=$(now)
smtp_source "$pf_port" >"$work/source-postfix.log" 2>&1 || { cat "$work/source-postfix.log" >&2; tail -20 "$p/log/maillog" >&2; die "smtp-source against postfix failed (or exceeded ${run_timeout}s)"; }
t1=$(now)
# Postfix's 250 means queued: wait (bounded) until the Maildir holds every
# message. Poll twice a second; the finish time is the newest file's mtime.
count=0
for ((i = 0; i < run_timeout * 2; i++)); do
    count=$(find "$maildir/new" -type f 2>/dev/null | wc -l)
    [ "$count" -ge "$messages" ] && break
    sleep 0.5
done
t_poll=$(now)
if [ "$count" -ne "$messages" ]; then
    grep -E 'warning|error|fatal|status=(deferred|bounced)' "$p/log/maillog" | tail -20 >&2
    die "postfix: $maildir/new holds $count files after ${run_timeout}s, expected $messages"
fi
t2=$(find "$maildir/new" -type f -printf '%T@\n' | sort -n | tail -n 1)
awk -v a="$t2" -v b="$t1" 'BEGIN { exit !(a + 0 < b + 0) }' && t2=$t1 # delivered before the last reply
pf_rate=$(rate "$messages" "$t0" "$t2")
sent=$(grep -c 'status=sent' "$p/log/maillog" || true)
note "$messages messages in $(secs "$t0" "$t2") s: $pf_rate msg/s into the Maildir (timed to the newest file; polling saw all at +$(secs "$t0" "$t_poll") s)"
note "(its 250 means queued, not delivered: smtp-source alone took $(secs "$t0" "$t1") s, $(rate "$messages" "$t0" "$t1") msg/s accepted)"
note "verified: $count files in the Maildir, $sent status=sent log lines"
echo

# ---------------------------------------------------------------- result
r_pf=$(ratio "$mg_rate" "$pf_rate")
r_sink=$(ratio "$mg_rate" "$sink_rate")
echo "messages/s ($messages x $size bytes, $sessions sessions; generator and target share $(nproc) cores):"
printf '  %-40s %10s\n' "smtp-sink (no storage)" "$sink_rate"
printf '  %-40s %10s\n' "mailgate (durable, mailbox)" "$mg_rate"
printf '  %-40s %10s\n' "postfix (virtual to Maildir, queued+fsync)" "$pf_rate"
echo "mailgate/postfix = ${r_pf}x (target >= 1.5): $(meets "$r_pf" 1.5)"
echo "mailgate/smtp-sink = ${r_sink}x (target >= 0.5): $(meets "$r_sink" 0.5)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
