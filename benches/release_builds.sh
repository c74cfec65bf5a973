#!/usr/bin/env bash
# The set-up every client benchmark shares: dependencies, the testbed, and release builds of dockfleet in
# Rust (the benches crate), Python (into .venv) and Node. Sourced by benches/run_*.sh from the repo root.
bash scripts/install-deps.sh
bash scripts/testbed.sh up
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
echo "[bench] release builds (Rust, Python, Node)" >&2
cargo build -q --release -p dockfleet-benches
(cd bindings-python && maturin develop -q --release)
(cd bindings-node && npx napi build --platform --release --manifest-path Cargo.toml >/dev/null 2>&1 && node dts-signal.js)
