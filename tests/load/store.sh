#!/usr/bin/env bash
# Store micro-benchmark (not a test): durable 5 KiB inserts/s with 1 and 50
# concurrent writers, beside the raw fdatasync rate of the same disk.
# Usage: bash tests/load/store.sh [MESSAGES] [DIR]   (default 5000, a dir under target/)
set -euo pipefail
cd "$(dirname "$0")/../.."
messages=${1:-5000}
dir=${2:-$PWD/target/store-bench}
cargo build --release --locked --example store_bench
timeout 600 target/release/examples/store_bench --messages "$messages" --dir "$dir"
rm -rf "$dir"
