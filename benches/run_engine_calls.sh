#!/usr/bin/env bash
# Engine-call benchmark: 1,000 sequential ping / list containers / inspect calls against the same testbed
# engine through raw bollard, dockfleet (Rust, Python, Node), docker-py, dockerode and the docker CLI, in
# one run; writes the medians and the ratios to raw bollard into BENCHMARKS.md.
#   bash benches/run_engine_calls.sh [CALLS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-1000} rounds=${2:-11}
bash scripts/install-deps.sh
bash scripts/testbed.sh up
(cd benches && [ -d node_modules/dockerode ] || npm install --no-audit --no-fund --loglevel=error)
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
echo "[bench] release builds (Rust, Python, Node)" >&2
cargo build -q --release -p dockfleet-benches
(cd bindings-python && maturin develop -q --release)
(cd bindings-node && npx napi build --platform --release --manifest-path Cargo.toml >/dev/null 2>&1)
python benches/engine_calls_report.py "$calls" "$rounds"
