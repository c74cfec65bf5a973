"""Service-stats benchmark: one resource sample of every task of a 9-replica service spread over the
testbed's 3 engines, through dockfleet's `service_stats` (the Python binding's blocking facade), docker-py
one container after another (what a script does), docker-py with a thread per container, and the docker
CLI (`docker stats --no-stream` of each host's tasks, the three hosts at once). Every client asks the
engines for the same sample (two CPU readings a second apart), so the wall time says how much of that
second each one waits for in parallel. Writes the medians and ratios to BENCHMARKS.md.
Usage: python benches/stats.py [ROUNDS]
"""

import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import docker

from dockfleet import sync
from update_benchmarks import update

INVENTORY = "/var/lib/dockfleet-testbed/fleet.toml"
HOSTS = ["df-1", "df-2", "df-3"]
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
REPLICAS = 9


def dockfleet_sample(fleet, service, _clients):
    return {s.stats.id: s.stats.memory_bytes for s in sync.service_stats(fleet, service)}


def containers(clients, service):
    return [(c, x.id) for c in clients.values() for x in c.containers.list(filters={"label": f"dockfleet.service={service}"})]


def memory(raw):
    """Memory without page cache, as `docker stats` and dockfleet compute it."""
    m = raw["memory_stats"]
    cache = m.get("stats", {}).get("inactive_file", m.get("stats", {}).get("total_inactive_file", 0))
    return m["usage"] - min(cache, m["usage"])


def dockerpy_sequential(_fleet, service, clients):
    return {cid: memory(c.api.stats(cid, stream=False)) for c, cid in containers(clients, service)}


def dockerpy_threads(_fleet, service, clients):
    found = containers(clients, service)
    with ThreadPoolExecutor(len(found)) as pool:
        raws = list(pool.map(lambda t: t[0].api.stats(t[1], stream=False), found))
    return {cid: memory(raw) for (_, cid), raw in zip(found, raws)}


def cli(_fleet, service, clients):
    runs = []
    for c in clients.values():
        ids = [x.id for x in c.containers.list(filters={"label": f"dockfleet.service={service}"})]
        address = c.api.base_url.replace("http://", "tcp://")
        cmd = [DOCKER, "-H", address, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.MemUsage}}", *ids]
        runs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    out = {}
    for r in runs:
        text, _ = r.communicate()
        if r.returncode != 0:
            raise SystemExit(f"docker stats exited with {r.returncode}")
        for line in text.splitlines():
            cid, usage = line.split(" ", 1)
            out[cid] = usage
    return out


CLIENTS = [
    ("dockfleet service_stats (Python)", dockfleet_sample),
    ("docker-py, one container after another", dockerpy_sequential),
    ("docker-py, a thread per container", dockerpy_threads),
    ("docker CLI stats --no-stream, hosts at once", cli),
]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    fleet = sync.Fleet.from_file(INVENTORY)
    plain = sync.Fleet()
    for h in HOSTS:
        plain.add(fleet.host(h))
    addresses = {s.name: s.address for s in plain.probe()}
    clients = {h: docker.DockerClient(base_url=addresses[h].replace("tcp://", "http://")) for h in HOSTS}
    service = f"bench_stats_{os.getpid()}"
    spec = sync.ServiceSpec(name=service, image="dockfleet/busybox:latest", command=["sleep", "3600"],
                            replicas=REPLICAS, stop_grace_period=1.0)
    sync.deploy(plain, spec)
    try:
        times = {name: [] for name, _ in CLIENTS}
        for rnd in range(rounds + 1):  # round 0 warms every client up and is not reported
            for name, fn in CLIENTS:
                t = time.perf_counter()
                got = fn(plain, service, clients)
                seconds = time.perf_counter() - t
                if len(got) != REPLICAS:
                    raise SystemExit(f"{name}: {len(got)} samples, not {REPLICAS}")
                if rnd:
                    times[name].append(seconds)
                print(f"[bench] round {rnd} {name}: {seconds:.3f} s", file=sys.stderr)
    finally:
        sync.remove_service(plain, service)
    write(times, rounds)


def write(times, rounds):
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med[CLIENTS[0][0]]
    rows = "\n".join(f"| {k} | {med[k]:.2f} | {med[k] / base:.2f} |" for k, _ in CLIENTS)
    update(
        f"""## Service stats: one sample of 9 tasks over 3 engines (dockfleet, docker-py, docker CLI)

`bash benches/run_stats.sh` ({date.today()}, {platform.machine()}, {os.cpu_count()} cores; median of {rounds} rounds after a
warm-up round). A service of {REPLICAS} replicas spread over df-1..df-3; each client takes one resource sample of every
task. The engine answers a one-sample request after two CPU readings about a second apart, so a client that
asks for all tasks at once waits that second once; one that asks task after task waits it per task.

| client | seconds (median) | ÷ dockfleet |
|---|---:|---:|
{rows}

dockfleet lists the service's containers on every host at once and samples all of them concurrently
(`service_stats`, the same call on a Swarm backend); docker-py's `stats(stream=False)` blocks for each
container in turn unless the script brings its own threads; the CLI samples one host's containers
together but knows one host per invocation.
"""
    )


if __name__ == "__main__":
    main()
