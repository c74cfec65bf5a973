#!/usr/bin/env bash
# Client instructions per call, ping and inspect (callgrind): dockfleet in Rust, Python (blocking and awaited) and Node,
# docker-py, and asyncio's own floor, against the same testbed engine; writes BENCHMARKS.md.
#   bash benches/run_instructions.sh [N1] [N2]
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/release_builds.sh
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null; }
python benches/instructions_report.py tcp://10.250.0.11:2375 "${1:-300}" "${2:-1300}"
