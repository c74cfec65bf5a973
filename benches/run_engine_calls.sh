#!/usr/bin/env bash
# Engine-call benchmark: sequential ping / list containers / inspect calls against the same testbed engine
# through raw bollard, dockfleet (Rust, Python, Node), docker-py, dockerode and the docker CLI, in one run,
# the clients taking turns batch by batch (default: 50 rounds of 100 calls, 5,000 per client and
# operation); writes the medians and the ratios to raw bollard into BENCHMARKS.md.
#   bash benches/run_engine_calls.sh [CALLS per batch] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100} rounds=${2:-50}
source benches/release_builds.sh
(cd benches && [ -d node_modules/dockerode ] || npm install --no-audit --no-fund --loglevel=error)
python benches/engine_calls_report.py "$calls" "$rounds"
