#!/usr/bin/env bash
# What unauthenticated clients can pin in memory (not a test; never run in CI).
#
# Against one mailgate (release build, embedded defaults on loopback), for each of
# IMAP (a literal before login), HTTPS (an admin API body without a valid
# signature) and SMTP (MX DATA that stops before the final dot): CLIENTS
# connections each push SIZE_MIB MiB and then go silent. Prints the daemon's RSS
# before and with all of them holding on, and the growth per protocol.
# Target (issue 20.4): less than 100 MiB of growth in total for 16 x 39 MiB.
#
# Usage: bash tests/load/attack.sh [CLIENTS] [SIZE_MIB]   (defaults 16 39)
# Environment: SKIP_BUILD=1 uses target/release/mailgate as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
clients=${1:-16}
size=${2:-39}
die() { echo "attack.sh: error: $*" >&2; exit 1; }
. "$root/tests/load/common.sh"
bin=$root/target/release/mailgate
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked
[ -x "$bin" ] || die "$bin missing"
mkdir -p "$root/target/load"
work=$(mktemp -d "$root/target/load/attack.XXXXXX")
mg_pid=""
cleanup() {
    local rc=$?
    set +e
    [ -n "$mg_pid" ] && stop_pid "$mg_pid"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The MX benchmark's config, plus the plain IMAP listener and room for 48
# connections from one address.
mx_config "$work" 'resolver = "static"

[limits]
max_connections_per_ip = 1000

[listeners.imap]
enabled = true
address = "127.0.0.1"
port = 0
tls = "starttls"'
serve_mailgate "$bin" "$work" || die "mailgate did not start"
sink_user "$bin" "$work" || die "creating sink@load.test failed"
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$mg_pid/status"; }

echo "Unauthenticated memory: $clients connections x $size MiB per protocol, then silence"
base=$(rss)
echo "  RSS at rest: $base MiB"
timeout 600 python3 - "$work/data/run/ports.json" "$clients" "$size" "$mg_pid" <<'PY'
import json, socket, ssl, sys, time, threading
ports = json.load(open(sys.argv[1]))
clients, size_mib, pid = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
size = size_mib << 20
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
def push(sock, head, total):
    try:
        sock.sendall(head)
        chunk = b"x" * 65536 + b"\r\n"
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass  # refused or closed by the server: what we hope for
def imap():
    s = socket.create_connection(("127.0.0.1", ports["imap"]))
    s.recv(4096)
    return s, f"a LOGIN {{{size}+}}\r\n".encode()
def https():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ports["https"])))
    head = (f"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: WorkMailService.ListOrganizations\r\nContent-Length: {size}\r\n\r\n").encode()
    return s, head
def smtp():
    s = socket.create_connection(("127.0.0.1", ports["smtp"]))
    f = s.makefile("rb")
    f.readline()
    for cmd in [b"EHLO attacker.test", b"MAIL FROM:<a@attacker.test>", b"RCPT TO:<sink@load.test>", b"DATA"]:
        s.sendall(cmd + b"\r\n")
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                break
    return s, b"Subject: x\r\n\r\n"
held = []
start = rss()
for name, open_ in [("imap", imap), ("https", https), ("smtp", smtp)]:
    before = rss()
    threads = []
    for _ in range(clients):
        s, head = open_()
        held.append(s)
        t = threading.Thread(target=push, args=(s, head, size), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=120)
    time.sleep(2)
    print(f"  {name}: {clients} x {size_mib} MiB pushed; RSS {before:.1f} -> {rss():.1f} MiB")
end = rss()
print(f"  all three held: RSS {start:.1f} -> {end:.1f} MiB, growth {end - start:.1f} MiB "
      f"(target < 100): {'met' if end - start < 100 else 'BELOW target'}")
PY
