#!/usr/bin/env bash
# Client instructions per call, ping and inspect (callgrind): dockfleet in Rust, Python (blocking and awaited) and Node,
# docker-py, and asyncio's own floor, against the same testbed engine; writes BENCHMARKS.md.
#   bash benches/run_instructions.sh [N1] [N2]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
command -v valgrind >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q valgrind >/dev/null
bash scripts/testbed.sh up
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
echo "[bench] release builds (Rust, Python, Node)" >&2
cargo build -q --release -p dockfleet-benches
(cd bindings-python && maturin develop -q --release)
(cd bindings-node && npx napi build --platform --release --manifest-path Cargo.toml >/dev/null 2>&1)
python benches/instructions_report.py tcp://10.250.0.11:2375 "${1:-300}" "${2:-1300}"
