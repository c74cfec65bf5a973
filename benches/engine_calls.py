"""Engine-call benchmark, Python side: dockfleet's Python binding and docker-py (PyPI `docker`, its
low-level APIClient, which is what its high-level calls use), N sequential calls per op and round.
Prints one JSON line per (client, op, round).
Usage: engine_calls.py ADDRESS CONTAINER_ID [CALLS] [ROUNDS] [WARM_UP]
"""

import asyncio
import json
import sys
import time

import docker

import dockfleet
from dockfleet import sync


def warm_up():
    """Unreported calls of each operation per client before the rounds."""
    return int(sys.argv[5]) if len(sys.argv) > 5 else 100


def report(client, op, rnd, calls, seconds):
    print(json.dumps({"client": client, "op": op, "round": rnd, "calls": calls, "seconds": seconds}), flush=True)


async def dockfleet_round(host, cid, calls, rnd):
    for op, fn in (("ping", lambda: host.ping()), ("list", lambda: host.list_containers()), ("inspect", lambda: host.inspect_container(cid))):
        t = time.perf_counter()
        for _ in range(calls):
            await fn()
        report("dockfleet-python", op, rnd, calls, time.perf_counter() - t)


def sync_round(host, cid, calls, rnd):
    for op, fn in (("ping", host.ping), ("list", host.list_containers), ("inspect", lambda: host.inspect_container(cid))):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        report("dockfleet-python (sync)", op, rnd, calls, time.perf_counter() - t)


def dockerpy_round(client, cid, calls, rnd):
    for op, fn in (("ping", client.ping), ("list", client.containers), ("inspect", lambda: client.inspect_container(cid))):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        report("docker-py", op, rnd, calls, time.perf_counter() - t)


async def main():
    address, cid = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    host = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="bench", address=address, insecure=True))
    client = docker.APIClient(base_url=address, version="auto")
    # Warm-up, not reported (as on the Rust and Node sides): a process's first calls would otherwise
    # land on whichever client is measured first.
    for _ in range(warm_up()):
        await host.ping()
        await host.list_containers()
        await host.inspect_container(cid)
        client.ping()
        client.containers()
        client.inspect_container(cid)
    for rnd in range(rounds):
        await dockfleet_round(host, cid, calls, rnd)
        dockerpy_round(client, cid, calls, rnd)


def run_sync():
    address, cid = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    host = sync.DockerHost.connect(dockfleet.HostConfig(name="bench-sync", address=address, insecure=True))
    for _ in range(warm_up()):
        host.ping()
        host.list_containers()
        host.inspect_container(cid)
    for rnd in range(rounds):
        sync_round(host, cid, calls, rnd)


asyncio.run(main())
run_sync()
