#!/usr/bin/env bash
# Access benchmark (not a test): access-rule decisions/s and p99 with 10 rules (goal
# under 2 µs), token verifications/s and mints/s (examples/access_bench.rs), then admin
# API ListUsers requests/s and p99 on an organization of USERS users, against the real
# daemon with only its https listener on 127.0.0.1 (port 0) and boto3 clients.
# Usage: bash tests/load/access.sh [USERS] [CLIENTS]   (default 10000, 8)
# Needs the interop venv (target/interop-venv with boto3) for the admin API part.
set -euo pipefail
cd "$(dirname "$0")/../.."
users=${1:-10000}
clients=${2:-8}
py=${PYTHON:-$PWD/target/interop-venv/bin/python}

cargo build --release --locked --example access_bench
cargo build --release --locked

echo "== in-process: rule decisions and tokens"
timeout 120 target/release/examples/access_bench

echo "== admin API: ListUsers on an organization of $users users ($clients concurrent clients)"
if ! "$py" -c 'import boto3' 2>/dev/null; then
    echo "skipped: $py has no boto3 (create target/interop-venv first)" >&2
    exit 1
fi

mkdir -p target/load
root=$(mktemp -d "$PWD/target/load/access.XXXXXX")
data=$root/data
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only the https listener; every other listener is omitted, hence disabled.
cat >"$root/mailgate.toml" <<EOF
[server]
hostname = "localhost"
data_dir = "$data"
shutdown_grace_secs = 5

[listeners.https]
address = "127.0.0.1"
port = 0
tls = "implicit"
EOF

target/release/mailgate serve --config "$root/mailgate.toml" >/dev/null 2>"$root/stderr.log" &
pid=$!
for _ in $(seq 1 300); do
    [[ -s $data/run/ports.json ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "mailgate exited early:" >&2; cat "$root/stderr.log" >&2; exit 1
    fi
    sleep 0.1
done
[[ -s $data/run/ports.json ]] || { echo "mailgate wrote no ports.json in 30 s" >&2; exit 1; }

MG_DATA=$data MG_USERS=$users MG_CLIENTS=$clients timeout 900 "$py" - <<'EOF'
import concurrent.futures as cf
import json
import os
import threading
import time

import boto3
import botocore.config

data = os.environ["MG_DATA"]
n_users = int(os.environ["MG_USERS"])
n_clients = int(os.environ["MG_CLIENTS"])
port = json.load(open(os.path.join(data, "run", "ports.json")))["https"]
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(data, "admin-credentials")
os.environ.pop("AWS_PROFILE", None)
cfg = botocore.config.Config(max_pool_connections=4, retries={"max_attempts": 1, "mode": "standard"})
local = threading.local()


def client():
    # One client per thread (boto3 clients are thread-safe, their creation is not).
    c = getattr(local, "c", None)
    if c is None:
        s = boto3.Session(profile_name="mailgate", region_name="local")
        c = s.client("workmail", endpoint_url=f"https://localhost:{port}",
                     verify=os.path.join(data, "tls", "ca.pem"), config=cfg)
        local.c = c
    return c


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))]


main = client()
org = main.list_organizations()["OrganizationSummaries"][0]["OrganizationId"]
existing = len(main.list_users(OrganizationId=org, MaxResults=100)["Users"])

# 1. Users, without passwords (argon2 per user would take minutes).
t0 = time.monotonic()
def create(i):
    client().create_user(OrganizationId=org, Name=f"user{i:05d}", DisplayName=f"User {i}")
with cf.ThreadPoolExecutor(16) as ex:
    for f in cf.as_completed([ex.submit(create, i) for i in range(n_users)]):
        f.result()
dt = time.monotonic() - t0
print(f"created {n_users} users in {dt:.1f} s ({n_users / dt:.0f} CreateUser/s, 16 threads)")


def walk():
    """All pages with MaxResults 100; returns (users seen, per-request latencies)."""
    seen, lat, token = 0, [], None
    for _ in range(n_users // 100 + 10):
        kw = {"OrganizationId": org, "MaxResults": 100}
        if token:
            kw["NextToken"] = token
        t = time.perf_counter()
        out = client().list_users(**kw)
        lat.append(time.perf_counter() - t)
        seen += len(out["Users"])
        token = out.get("NextToken")
        if not token:
            break
    return seen, lat


seen, _ = walk()
print(f"organization {org}: {seen} users listed ({existing} pre-existing on page 1 before the load)")
assert seen >= n_users, f"walk saw {seen} users, expected at least {n_users}"


def first_page_load(threads, secs=5.0, cap=200_000):
    lat, lock = [], threading.Lock()
    stop = time.monotonic() + secs
    def worker():
        mine = []
        while time.monotonic() < stop and len(mine) < cap:
            t = time.perf_counter()
            client().list_users(OrganizationId=org, MaxResults=100)
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    return lat, time.monotonic() - t0


def walk_load(threads, walks_per_thread=3, secs=60.0):
    lat, lock, walks = [], threading.Lock(), [0]
    stop = time.monotonic() + secs
    def worker():
        for _ in range(walks_per_thread):
            if time.monotonic() > stop:
                break
            _, l = walk()
            with lock:
                lat.extend(l)
                walks[0] += 1
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    return lat, time.monotonic() - t0, walks[0]


def line(label, lat, dt, extra=""):
    print(f"{label:<44} {len(lat) / dt:8.0f} req/s   p50 {pct(lat, .5) * 1000:7.2f} ms   "
          f"p99 {pct(lat, .99) * 1000:7.2f} ms   ({len(lat)} requests in {dt:.1f} s{extra})")


for threads in (1, n_clients):
    lat, dt = first_page_load(threads)
    line(f"ListUsers first page, {threads} client(s)", lat, dt)
for threads in (1, n_clients):
    lat, dt, walks = walk_load(threads)
    line(f"ListUsers full walk (NextToken), {threads} client(s)", lat, dt, f", {walks} walks")
print("note: latencies are client-side (boto3 + TLS + HTTP on 127.0.0.1), python threads share one GIL")
EOF

kill -TERM "$pid"
if wait "$pid"; then status=0; else status=$?; fi
pid=
echo "mailgate exited $status after SIGTERM"
