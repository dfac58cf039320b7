#!/bin/sh
# Throughput (1 GiB download) and added latency (median of many small requests) of the
# stockade-net proxy against a direct loopback connection, measured in one run.
# Usage: bench/net/run.sh [MiB] [requests]    (defaults: 1024 2000)
# Targets (issue 4): proxy >= 80% of direct throughput, < 1 ms added median latency.
set -eu
cd "$(dirname "$0")/../.."
exec cargo run --quiet --release -p stockade-net --example netbench -- "${1:-1024}" "${2:-2000}"
