#!/usr/bin/env bash
# Scheduler benchmark (pure, no engines): writes its section of BENCHMARKS.md.
#   bash benches/run_scheduler.sh [TASKS] [HOSTS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p dockfleet-benches --bin scheduler
./target/release/scheduler "${1:-1000000}" "${2:-10000}" "${3:-5}" | tee /tmp/dockfleet-scheduler.md
python3 benches/update_benchmarks.py </tmp/dockfleet-scheduler.md
