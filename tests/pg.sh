#!/usr/bin/env bash
# A private PostgreSQL for the tests: initdb into a temp dir, the server on
# 127.0.0.1 at a free high port (never the system service), stopped by pid.
#
# Sourced (by tests/run.sh): starts the server, exports MAILGATE_TEST_POSTGRES
#   (postgres://postgres@127.0.0.1:PORT/postgres) and stops it when the shell exits.
# The server also speaks TLS (ssl=on) with a certificate for 127.0.0.1 and localhost,
#   signed by a CA made at start, whose PEM file MAILGATE_TEST_POSTGRES_CA names
#   (unset, and TLS off, if openssl is missing); plain connections still work.
# Run:  bash tests/pg.sh CMD ARGS...   runs CMD with the server up, then stops it
#   (e.g. `bash tests/pg.sh cargo test --lib store::postgres`).
# Debian's postgresql package is installed if the binaries are missing, with
# the service neither started nor given a cluster.

pg_say() { printf '==> %s\n' "$*" >&2; }

pg_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The newest installed PostgreSQL's bin directory, or nothing.
pg_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Installs Debian's postgresql without a main cluster and without starting it.
pg_install() {
    pg_say "installing Debian's postgresql (no cluster, service not started)"
    pg_as_root mkdir -p /etc/postgresql-common
    if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
        echo "create_main_cluster = false" | pg_as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
    fi
    local own_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | pg_as_root tee /usr/sbin/policy-rc.d >/dev/null
        pg_as_root chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # The createcluster.conf written above stays as it is, without a question.
    pg_as_root env DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install -y -qq \
        --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        postgresql >/dev/null
    if [ -n "$own_policy" ]; then pg_as_root rm -f /usr/sbin/policy-rc.d; fi
}

# A TCP port on 127.0.0.1 nobody listens on, from the high range.
pg_free_port() {
    python3 - <<'EOF' 2>/dev/null && return 0
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
    local p
    for _ in $(seq 50); do
        p=$((40000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Stops the server by its pid and removes its directory.
pg_stop() {
    if [ -n "${PG_TEST_PID:-}" ]; then
        kill -INT "$PG_TEST_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$PG_TEST_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PG_TEST_PID" 2>/dev/null || true
        PG_TEST_PID=
    fi
    if [ -n "${PG_TEST_DIR:-}" ]; then
        rm -rf "$PG_TEST_DIR"
        PG_TEST_DIR=
    fi
}

# A throwaway CA and a server certificate it signed, in DIR/tls: prints the
# server options that turn TLS on.
pg_tls() {
    local dir=$1/tls
    command -v openssl >/dev/null || return 1
    mkdir -p "$dir"
    (
        cd "$dir" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
            -subj /CN=mailgate-test-ca -keyout ca-key.pem -out ca.pem \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
            -keyout server.key -out server.csr &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -set_serial 2 -days 7 \
            -extfile ext -out server.crt
    ) >"$1/tls.log" 2>&1 || { cat "$1/tls.log" >&2; return 1; }
    chmod 600 "$dir/server.key"
    if [ "$(id -u)" = 0 ]; then chown -R postgres: "$dir"; fi
    echo "-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
}

# initdb, start, wait until ready, export MAILGATE_TEST_POSTGRES.
pg_start() {
    local bin run=()
    bin=$(pg_bindir) || { pg_install && bin=$(pg_bindir); } || {
        echo "PostgreSQL binaries not found and could not be installed" >&2
        return 1
    }
    PG_TEST_DIR=$(mktemp -d /tmp/mailgate-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_TEST_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust \
        -E UTF8 --locale=C.UTF-8 >"$PG_TEST_DIR/initdb.log" 2>&1 || {
        cat "$PG_TEST_DIR/initdb.log" >&2
        return 1
    }
    local port tls_opts
    port=$(pg_free_port) || { echo "no free port" >&2; return 1; }
    if tls_opts=$(pg_tls "$PG_TEST_DIR"); then
        export MAILGATE_TEST_POSTGRES_CA="$PG_TEST_DIR/tls/ca.pem"
    else
        pg_say "openssl failed or missing: the test server has no TLS"
        tls_opts=
        unset MAILGATE_TEST_POSTGRES_CA
    fi
    # $tls_opts is split into words on purpose (paths from mktemp have no spaces).
    # shellcheck disable=SC2086
    "${run[@]}" "$bin/postgres" -D "$PG_TEST_DIR/data" -k "$PG_TEST_DIR" \
        -h 127.0.0.1 -p "$port" -c fsync=on -c synchronous_commit=on \
        -c max_connections=200 $tls_opts >"$PG_TEST_DIR/server.log" 2>&1 &
    local launcher=$!
    for _ in $(seq 100); do
        # The postmaster's own pid (runuser forks, so $! is not it).
        if [ -z "${PG_TEST_PID:-}" ] && [ -s "$PG_TEST_DIR/data/postmaster.pid" ]; then
            PG_TEST_PID=$(head -1 "$PG_TEST_DIR/data/postmaster.pid")
        fi
        if [ -n "${PG_TEST_PID:-}" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
            export MAILGATE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
            pg_say "private PostgreSQL ($bin) on 127.0.0.1:$port, pid $PG_TEST_PID"
            return 0
        fi
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.1
    done
    cat "$PG_TEST_DIR/server.log" >&2
    pg_stop
    return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    # Run as a script: the server lives as long as the command.
    set -euo pipefail
    trap pg_stop EXIT
    pg_start
    if [ $# -gt 0 ]; then "$@"; fi
else
    # Sourced: chain onto the caller's EXIT trap rather than replace it.
    pg_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
    trap "pg_stop${pg_prev_trap:+; $pg_prev_trap}" EXIT
    pg_start
fi
