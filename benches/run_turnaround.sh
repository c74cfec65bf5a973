#!/usr/bin/env bash
# Where an engine call's time goes, per client (perf's system-call tracepoints): the answer's wait and the
# client's turnaround between two calls, for dockfleet in Rust, Python (blocking and awaited) and Node;
# writes BENCHMARKS.md.
#   bash benches/run_turnaround.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/release_builds.sh
command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null; }
python benches/turnaround_report.py tcp://10.250.0.11:2375 "${1:-1000}"
