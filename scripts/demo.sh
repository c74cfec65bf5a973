#!/usr/bin/env bash
# The dockfleet demo on its embedded defaults: brings up the local testbed (several real Docker engines,
# each its own host), then lists the fleet with capacity, builds an image on one host, copies it to the
# others with a progress bar, runs a web container on every host and shows them answering; deploys a
# compose stack across the hosts, rolls an update, registers it in discovery, puts the built-in proxy in
# front of it, kills a task and shows it heal while the proxy keeps answering, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --no-python --no-node
bash scripts/testbed.sh up
cargo run -q -p dockfleet-examples --example demo -- "$@"
