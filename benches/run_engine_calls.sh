#!/usr/bin/env bash
# Engine-call benchmark: sequential ping / list containers / inspect calls against the same testbed engine
# through raw bollard, dockfleet (Rust, Python, Node), docker-py, dockerode and the docker CLI, in one run,
# the clients taking turns batch by batch (default: 50 rounds of 100 calls, 5,000 per client and
# operation); writes the medians and the ratios to raw bollard into BENCHMARKS.md.
# With `separate-cores`, the same rounds with the engine on one core and the clients on the other, into a
# section of its own.
#   bash benches/run_engine_calls.sh [CALLS per batch] [ROUNDS] [separate-cores]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100} rounds=${2:-50}
source benches/release_builds.sh
(cd benches && [ -d node_modules/dockerode ] || npm install --no-audit --no-fund --loglevel=error)
if [ "${3:-}" = separate-cores ]; then
  python benches/engine_calls_report.py --separate-cores "$calls" "$rounds"
else
  python benches/engine_calls_report.py "$calls" "$rounds"
fi
