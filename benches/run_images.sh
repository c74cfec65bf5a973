#!/usr/bin/env bash
# Image distribution benchmark: one image onto two testbed engines by dockfleet's copy, `docker save |
# docker load`, dockfleet's pull, bollard's pull and `docker pull` (the testbed's registry); writes its
# section of BENCHMARKS.md.
#   bash benches/run_images.sh [ROUNDS] [MEGABYTES]    default 5 rounds, a 32 MiB layer
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --no-python --no-node
bash scripts/testbed.sh up
cargo build -q --release -p dockfleet-benches --bin images
./target/release/images /var/lib/dockfleet-testbed/fleet.toml /var/lib/dockfleet-testbed/registry/env "${1:-5}" "${2:-32}" |
  tee /tmp/dockfleet-images.md
{
  cat /tmp/dockfleet-images.md
  echo "Measured $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores, Linux $(uname -r). Reproduce with:"
  echo
  echo '```sh'
  echo "bash benches/run_images.sh ${1:-5} ${2:-32}"
  echo '```'
} | python3 benches/update_benchmarks.py
