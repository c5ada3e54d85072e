#!/usr/bin/env bash
# Dovecot's imaptest against mailgate and against Dovecot (not a test; never run in CI).
#
# imaptest (https://github.com/dovecot/imaptest, release-2.3) is not built here:
# pass the path of a built binary. Without one the script says so and exits 0.
#   1. scripted: if IMAPTEST_TESTS (default: the `tests` directory beside the
#      binary) exists, runs every scripted group against mailgate and prints
#      imaptest's summary (target: all groups pass);
#   2. stress: `secs=SECS clients=CLIENTS` (imaptest's default mix: LOGIN,
#      LIST, STATUS, SELECT, FETCH, FETCH2, STORE, STORE \Deleted, EXPUNGE,
#      APPEND, LOGOUT) against mailgate, then against a private Dovecot instance
#      on a high loopback port (Maildir, `mail_fsync = always`, so an APPEND is
#      on disk before its OK as with mailgate). Both hold the same user with the
#      same argon2id hash (argon2 crate defaults m=19456 KiB, t=2, p=1, from
#      `imap_bench hash`; Dovecot's {ARGON2ID} scheme reads the parameters from
#      the PHC string), and both get the same generated mbox to APPEND from.
#      Both servers stay up and the runs alternate (mailgate, Dovecot, mailgate,
#      ...) ROUNDS times, so load from elsewhere on the machine falls on both.
#      Prints each run's command total, the sums, imaptest's error lines
#      (target: none for mailgate) and the ratio mailgate/dovecot (target >= 1.5).
#
# Usage: bash tests/load/imaptest.sh IMAPTEST_BIN [SECS] [CLIENTS] [ROUNDS]
#        (defaults 30 10 2)
# Environment: SKIP_BUILD=1 uses target/release/{mailgate,examples/imap_bench}
# as they are. IMAPTEST_TESTS=DIR names the scripted tests (empty: skip them).
# Needs root (Dovecot drops privileges to nobody) and an installed `dovecot`
# (tests/load/imap.sh installs dovecot-imapd; this script only skips the Dovecot
# part without it). Everything lives under target/load/, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

imaptest=${1:-}
secs=${2:-30}
clients=${3:-10}
rounds=${4:-2}
if [ -z "$imaptest" ] || [ ! -x "$imaptest" ]; then
    echo "imaptest.sh: no imaptest binary given (${imaptest:-none}); skipped."
    echo "usage: $0 IMAPTEST_BIN [SECS] [CLIENTS]"
    exit 0
fi
for v in "$secs" "$clients" "$rounds"; do
    [[ $v =~ ^[1-9][0-9]{0,4}$ ]] || { echo "usage: $0 IMAPTEST_BIN [SECS] [CLIENTS] [ROUNDS]" >&2; exit 2; }
done
imaptest=$(cd "$(dirname "$imaptest")" && pwd)/$(basename "$imaptest")
tests_dir=${IMAPTEST_TESTS-$(dirname "$imaptest")/tests}

die() { echo "imaptest.sh: error: $*" >&2; exit 1; }
note() { echo "  $*"; }
. "$root/tests/load/common.sh"

[ "$(id -u)" = 0 ] || die "run as root (Dovecot drops privileges)"
command -v python3 >/dev/null || die "needs python3"
# imaptest links Dovecot's libdovecot.so, which Debian keeps here.
[ -d /usr/lib/dovecot ] && export LD_LIBRARY_PATH=/usr/lib/dovecot${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
bin=$root/target/release/mailgate
bench=$root/target/release/examples/imap_bench
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --locked --bin mailgate --example imap_bench
fi
[ -x "$bin" ] && [ -x "$bench" ] || die "build target/release/mailgate and examples/imap_bench first"

start_work imaptest

user=stress@load.test
pass='Corr3ct-Horse-Battery'
"$bin" gen-cert --out "$work/certs" --host localhost >/dev/null || die "gen-cert failed"
phc=$("$bench" hash --pass "$pass")

# The messages imaptest APPENDs: 200 deterministic MIME messages (text, multipart
# alternative, attachments, an encapsulated message), 1 to 12 KiB.
python3 - "$work/stress.mbox" <<'PY'
import random, sys
random.seed(20)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
def text(n): return " ".join(random.choice(words) for _ in range(n))
out = open(sys.argv[1], "w", newline="\n")
for i in range(200):
    head = (f"From sender{i % 7}@example.org Mon Jan  1 00:00:00 2024\n"
            f"From: Sender {i % 7} <sender{i % 7}@example.org>\nTo: stress@load.test\n"
            f"Subject: msg {i} {text(3)}\nDate: Mon, 1 Jan 2024 00:{i % 60:02d}:00 +0000\n"
            f"Message-ID: <stress{i}@example.org>\nMIME-Version: 1.0\n")
    kind = i % 4
    if kind == 0:
        body = "Content-Type: text/plain; charset=us-ascii\n\n" + text(80 + i % 50) + "\n"
    elif kind == 1:
        body = ("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
                + text(60) + "\n--b\nContent-Type: text/html\n\n<p>" + text(60) + "</p>\n--b--\n")
    elif kind == 2:
        blob = "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789") for _ in range(76))
        lines = "\n".join(blob for _ in range(20 + i % 100))
        body = ("Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\n" + text(40)
                + "\n--m\nContent-Type: application/octet-stream; name=f.bin\n"
                + "Content-Transfer-Encoding: base64\n\n" + lines + "\n--m--\n")
    else:
        body = ("Content-Type: multipart/mixed; boundary=e\n\n--e\nContent-Type: text/plain\n\n" + text(20)
                + "\n--e\nContent-Type: message/rfc822\n\nFrom: inner@example.net\nSubject: inner " + str(i)
                + "\n\n" + text(30) + "\n--e--\n")
    out.write(head + body + "\n")
PY

# stress NAME PORT: one imaptest stress run; its output goes to $work/stress-NAME.txt
# (the last run's) and is appended to $work/stress-NAME.all.
stress() {
    local name=$1 port=$2
    timeout $((secs + 120)) "$imaptest" host=127.0.0.1 port="$port" ssl=any-cert \
        user="$user" pass="$pass" mbox="$work/stress.mbox" secs="$secs" clients="$clients" \
        >"$work/stress-$name.txt" 2>&1 || true
    cat "$work/stress-$name.txt" >>"$work/stress-$name.all"
}
# total FILE: the sum of imaptest's final Totals line (commands of every kind).
total() {
    awk '/^Totals:/ { t = 1; next } t && /^ *[0-9]+( +[0-9]+)+ *$/ { s = 0; for (i = 1; i <= NF; i++) s += $i; print s; exit }' "$1"
}
errors() { grep -c '^Error:' "$1" || true; }

echo "imaptest ($imaptest): stress ${secs}s x $clients clients, implicit TLS on 127.0.0.1"
echo "note: client and servers share this machine's $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- 1. mailgate
echo "[1/2] mailgate (IMAPS, SQLite store)"
mg=$work/mailgate
mkdir -p "$mg"
imaps_config "$mg" "$work/certs"
serve_mailgate "$bin" "$mg" || die "mailgate did not start (no data/run/ports.json within 60 s)"
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imaps"])' "$mg/data/run/ports.json") ||
    die "no imaps port in ports.json"
imap_user "$bin" "$mg" "$work/certs/ca.pem" "$user" "$pass" || die "creating $user through the admin API failed"
scripted="not run"
if [ -n "$tests_dir" ] && [ -d "$tests_dir" ]; then
    (cd "$tests_dir" && timeout 900 "$imaptest" host=127.0.0.1 port="$port" ssl=any-cert \
        user="$user" pass="$pass" test="$tests_dir") >"$work/scripted.txt" 2>&1 || true
    scripted=$(grep -E '^[0-9]+ test groups:' "$work/scripted.txt" || echo "no summary (see below)")
    note "scripted: $scripted"
    grep -E '^\*\*\* Test' "$work/scripted.txt" | sed 's/^/    /' || true
fi
echo

# ---------------------------------------------------------------- 2. Dovecot
if command -v dovecot >/dev/null; then
    dovecot_version=$(dovecot --version | cut -d' ' -f1)
    echo "[2/2] Dovecot $dovecot_version (private instance, Maildir, mail_fsync = always)"
    d=$work/dovecot
    dc_port=$(free_port)
    # Durable like mailgate: an APPENDed message is fsynced before its OK.
    dovecot_config "$d" "$work/certs" "$dc_port" "$user" "$phc" "mail_fsync = always"
    dovecot -c "$d/dovecot.conf" || { cat "$d/dovecot.log" >&2 2>/dev/null; die "dovecot failed to start"; }
    dc_conf=$d/dovecot.conf
    wait_port "$dc_port" "" 30 || { tail -20 "$d/dovecot.log" >&2; die "dovecot not accepting on 127.0.0.1:$dc_port"; }
else
    echo "[2/2] Dovecot: not installed (tests/load/imap.sh installs it); skipped"
    dc_port=""
fi
echo

echo "stress: ${secs}s x $clients clients, $rounds rounds, alternating"
mg_total=0
dc_total=0
for ((i = 1; i <= rounds; i++)); do
    stress mailgate "$port"
    n=$(total "$work/stress-mailgate.txt")
    mg_total=$((mg_total + ${n:-0}))
    line="round $i: mailgate ${n:-?}"
    if [ -n "$dc_port" ]; then
        stress dovecot "$dc_port"
        n=$(total "$work/stress-dovecot.txt")
        dc_total=$((dc_total + ${n:-0}))
        line="$line, dovecot ${n:-?}"
    fi
    note "$line (load average $(cut -d' ' -f1 /proc/loadavg))"
done
mg_errors=$(errors "$work/stress-mailgate.all")
note "mailgate RSS after: $(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$mg_pid/status") MiB"
grep '^Error:' "$work/stress-mailgate.all" | head -5 | sed 's/^/    /' || true
[ -n "$dc_port" ] && note "dovecot error lines: $(errors "$work/stress-dovecot.all")"
echo

dc_shown=$dc_total
[ -n "$dc_port" ] || dc_shown="not run"
r=$(ratio "$mg_total" "$dc_total")
echo "imaptest stress, ${secs}s x $clients clients x $rounds rounds, commands in total:"
printf '  %-46s %10s\n' "mailgate (IMAPS, SQLite)" "$mg_total"
printf '  %-46s %10s\n' "dovecot ${dovecot_version:-} (Maildir, mail_fsync=always)" "$dc_shown"
echo "mailgate/dovecot = ${r}x (target >= 1.5): $(meets "$r" 1.5)"
echo "mailgate stress errors: $mg_errors (target 0)"
echo "scripted groups: $scripted"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
