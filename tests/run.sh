#!/usr/bin/env bash
# Runs every test mailgate has, after installing what the tests need on a fresh
# Debian machine (client tools only: no mail server packages are ever installed).
# Usage: bash tests/run.sh        (the README's test command; CI runs it too)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

say "client tools (Debian packages)"
packages=(openssl swaks libnet-ssleay-perl isync fetchmail systemd util-linux python3 python3-venv jq strace)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "Python clients (venv in target/interop-venv)"
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p target
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/interop/requirements.txt

say "Postfix's smtp-sink (unpacked from the Debian package into target/, never installed)"
pf=target/postfix
if [ ! -x "$pf/usr/sbin/smtp-sink" ]; then
    mkdir -p "$pf"
    fetch() { (cd target && apt-get download -q -o APT::Sandbox::User=root postfix >/dev/null 2>&1); }
    fetch || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq && fetch; } || true
    deb=$(ls target/postfix_*.deb 2>/dev/null | head -1)
    if [ -n "$deb" ]; then dpkg-deb -x "$deb" "$pf"; fi
fi
if [ -x "$pf/usr/sbin/smtp-sink" ]; then
    export SMTP_SINK="$PWD/$pf/usr/sbin/smtp-sink"
else
    echo "warning: could not unpack smtp-sink; the smarthost test against it will skip"
fi

command -v cargo >/dev/null || { echo "cargo (Rust 1.95) is required" >&2; exit 1; }

say "format"
cargo fmt --check

say "clippy"
cargo clippy --locked --all-targets -- -D warnings

say "build"
cargo build --locked --all-targets

say "cargo test"
source tests/pg.sh  # issue 19: a private PostgreSQL for the store tests (MAILGATE_TEST_POSTGRES), stopped at exit
cargo test --locked

if compgen -G "tests/interop/test_*.py" >/dev/null; then
    say "interop tests (real clients against the real binary)"
    MAILGATE_BIN="$PWD/target/debug/mailgate" "$venv/bin/python" -m pytest -q tests/interop
fi

say "all tests passed"
