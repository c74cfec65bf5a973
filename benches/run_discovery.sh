#!/usr/bin/env bash
# Discovery benchmark: container start / SIGKILL to a registry watcher through the registrator, embedded
# and etcd, and registration throughput into etcd; writes its section of BENCHMARKS.md.
#   bash benches/run_discovery.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --no-python --no-node
bash scripts/testbed.sh up
bash scripts/etcd.sh up
cargo build -q --release -p dockfleet-benches --bin discovery
./target/release/discovery /var/lib/dockfleet-testbed/fleet.toml http://127.0.0.1:23790 "${1:-60}" | tee /tmp/dockfleet-discovery.md
python3 benches/update_benchmarks.py </tmp/dockfleet-discovery.md
