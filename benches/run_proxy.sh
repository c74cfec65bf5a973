#!/usr/bin/env bash
# Proxy benchmark: wrk against HAProxy (1 thread), nginx (1 worker) and the dockfleet proxy (1 thread) at
# L7 and L4 over the same backends, idle-connection memory and discovery propagation; writes its section
# of BENCHMARKS.md.
#   bash benches/run_proxy.sh [ROUNDS] [SECONDS] [IDLE_CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --no-python --no-node
cargo build -q --release -p dockfleet-benches --bin proxy
python3 benches/proxy_report.py "${1:-5}" "${2:-5}" "${3:-9000}" | tee /tmp/dockfleet-proxy.md
python3 benches/update_benchmarks.py </tmp/dockfleet-proxy.md
