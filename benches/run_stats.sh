#!/usr/bin/env bash
# Service-stats benchmark: one sample of every task of a 9-replica service over the testbed's 3 engines
# through dockfleet, docker-py (sequential and threaded) and the docker CLI, in one run; writes the
# medians and ratios into BENCHMARKS.md.
#   bash benches/run_stats.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/testbed.sh up
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
echo "[bench] release build of the Python binding" >&2
(cd bindings-python && maturin develop -q --release)
python benches/stats.py "${1:-5}"
