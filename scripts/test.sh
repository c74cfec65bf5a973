#!/usr/bin/env bash
# Runs every dockfleet test: Rust (unit + integration against the testbed's real engines), the Rust
# examples, the Python binding (stubtest + pytest), the Node binding (node --test) and the parity check.
# Installs what is missing and brings the testbed up first. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every suite has a hard limit, so a hang fails fast instead of running into CI's 90 minutes.
limit() { timeout --kill-after=10 "$@"; }
export CARGO_TERM_COLOR=never
step() { echo; echo "=== $* ==="; }

step "dependencies"
bash scripts/install-deps.sh
step "testbed"
bash scripts/testbed.sh up
bash scripts/testbed.sh clean
bash scripts/etcd.sh up

step "rust: fmt and clippy"
cargo fmt --all --check
cargo clippy --workspace --all-targets --features dockfleet/etcd -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -q -p dockfleet --no-deps --features etcd
cargo clippy -q -p dockfleet -- -D warnings   # the crate as `cargo add dockfleet` builds it: no etcd
# The fuzz targets (a workspace of their own, run by hand: README "Fuzzing") are type-checked, linted and
# format-checked here, so they never rot; nothing is fuzzed in the tests.
cargo fmt --check --manifest-path fuzz/Cargo.toml
cargo clippy -q --locked --manifest-path fuzz/Cargo.toml -- -D warnings

step "rust: tests"
limit 1200 cargo test --workspace --exclude dockfleet-python --exclude dockfleet-node --features dockfleet/etcd

# Between suites that form and dissolve swarms: an engine whose swarm agent outlived its leave is restarted
# (scripts/testbed.sh, agent_leaked); otherwise this does nothing.
recheck_testbed() { bash scripts/testbed.sh up; }

step "rust: examples"
recheck_testbed
cargo run -q -p dockfleet-examples --example quickstart | tee /tmp/dockfleet-quickstart.out
grep -q "exit 0: hello from dockfleet" /tmp/dockfleet-quickstart.out
cargo run -q -p dockfleet-examples --example stack | tee /tmp/dockfleet-stack.out
grep -q "completed 3/3" /tmp/dockfleet-stack.out
grep -q "removed 4 containers" /tmp/dockfleet-stack.out
cargo run -q -p dockfleet-examples --example discovery | tee /tmp/dockfleet-discovery.out
grep -q "removed hello" /tmp/dockfleet-discovery.out
cargo run -q -p dockfleet-examples --example proxy | tee /tmp/dockfleet-proxy.out
[ "$(grep "^answered by" /tmp/dockfleet-proxy.out | sort -u | wc -l)" -ge 2 ]
grep -q "after killing one replica: 20 of 20 requests answered" /tmp/dockfleet-proxy.out
cargo run -q -p dockfleet-examples --example swarm | tee /tmp/dockfleet-swarm.out
for kind in fleet swarm; do
  grep -q "^\[$kind\] 2 service(s) deployed" /tmp/dockfleet-swarm.out
  grep -q "^\[$kind\] shop_web 3/3 on" /tmp/dockfleet-swarm.out
  grep -q "^\[$kind\] removed 4 tasks" /tmp/dockfleet-swarm.out
done
grep -q "^\[swarm\] shop_db 1/1 on df-1#1" /tmp/dockfleet-swarm.out
cargo run -q -p dockfleet-examples --example demo | tee /tmp/dockfleet-demo.out
grep -q "hello from .* on df-2" /tmp/dockfleet-demo.out
grep -q "\[###\] 3/3 task-updated" /tmp/dockfleet-demo.out
grep -q "^  40 lines of Prometheus text, e.g. dockfleet_task_cpu_percent{host=" /tmp/dockfleet-demo.out
grep -q "healed in" /tmp/dockfleet-demo.out
grep -q "discovery: .* live, " /tmp/dockfleet-demo.out
[ "$(grep -c "^  127.0.0.1:[0-9]* → hello" /tmp/dockfleet-demo.out)" -eq 6 ]
grep -q "through the proxy meanwhile: [1-9][0-9]* requests answered, 0 failed" /tmp/dockfleet-demo.out
grep -q "stack down: 2 services" /tmp/dockfleet-demo.out

step "bindings: build"
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
(cd bindings-python && maturin develop -q)
(cd bindings-node && npx napi build --platform --manifest-path Cargo.toml >/tmp/dockfleet-napi-build.log 2>&1 ||
  { cat /tmp/dockfleet-napi-build.log; exit 1; })
node bindings-node/dts-signal.js   # declares the AbortSignal in index.d.ts, lists the Promise-returning calls

step "python: stubtest, pytest (with the cross-language parity and README checks)"
recheck_testbed
python scripts/gen_pyi.py --check
(cd /tmp && python -m mypy.stubtest dockfleet)
limit 900 python -m pytest -q -o faulthandler_timeout=120 bindings-python/tests tests/parity

step "node: node --test"
recheck_testbed
(cd bindings-node && limit 900 node --test --test-timeout=120000 test/)
