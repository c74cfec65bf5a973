#!/usr/bin/env bash
# Deploy benchmark: dockfleet vs raw concurrent bollard vs Swarm mode on the same three testbed engines
# (deploy 50 replicas, scale 10 → 50 → 10, rolling update of 20); writes its section of BENCHMARKS.md.
# Forms a swarm on df-1..3 for the run and dissolves it afterwards.
#   bash benches/run_deploy.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --no-python --no-node
bash scripts/testbed.sh up
cargo build -q --release -p dockfleet-benches --bin deploy
D=/usr/bin/docker
leave() {
  for a in 10.250.0.13 10.250.0.12 10.250.0.11; do $D -H "tcp://$a:2375" swarm leave --force >/dev/null 2>&1 || true; done
}
trap leave EXIT
leave
$D -H tcp://10.250.0.11:2375 swarm init --advertise-addr 10.250.0.11 >/dev/null
token=$($D -H tcp://10.250.0.11:2375 swarm join-token -q worker)
for a in 10.250.0.12 10.250.0.13; do
  $D -H "tcp://$a:2375" swarm join --advertise-addr "$a" --token "$token" 10.250.0.11:2377 >/dev/null
done
./target/release/deploy /var/lib/dockfleet-testbed/fleet.toml "${1:-3}" | tee /tmp/dockfleet-deploy.md
python3 benches/update_benchmarks.py </tmp/dockfleet-deploy.md
