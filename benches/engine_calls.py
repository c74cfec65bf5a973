"""Engine-call benchmark, Python side: dockfleet's Python binding (awaited on asyncio's default loop, and
its blocking facade) and docker-py (PyPI `docker`, its low-level APIClient, which is what its high-level
calls use), as a worker that `benches/engine_calls_report.py` drives in lockstep with the Rust and Node
workers.

With `uvloop`, the worker has one client only, dockfleet's binding awaited on uvloop's loop.

Protocol: prints `{"clients": [...]}` once connected, then reads lines `CLIENT<TAB>OP<TAB>CALLS` (OP is
`ping`, `list` or `inspect`) and answers each with one JSON line after making CALLS sequential calls:
`{"client", "op", "calls", "seconds"}`. Ends at end of input.

    python benches/engine_calls.py ADDRESS CONTAINER_ID [uvloop]
"""

import asyncio
import json
import sys
import time

import docker

import dockfleet
from dockfleet import sync


async def awaited(fn, calls):
    t = time.perf_counter()
    for _ in range(calls):
        await fn()
    return time.perf_counter() - t


def blocking(fn, calls):
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - t


def main():
    address, cid = sys.argv[1], sys.argv[2]
    on_uvloop = sys.argv[3:] == ["uvloop"]
    if on_uvloop:
        import uvloop

        loop, awaited_name = uvloop.new_event_loop(), "dockfleet-python (uvloop)"
    else:
        loop, awaited_name = asyncio.new_event_loop(), "dockfleet-python"
    config = dockfleet.HostConfig(name="bench", address=address, insecure=True)
    host = loop.run_until_complete(dockfleet.DockerHost.connect(config))
    ops = {awaited_name: {"ping": host.ping, "list": host.list_containers, "inspect": lambda: host.inspect_container(cid)}}
    if not on_uvloop:
        facade = sync.DockerHost.connect(dockfleet.HostConfig(name="bench-sync", address=address, insecure=True))
        client = docker.APIClient(base_url=address, version="auto")
        ops["dockfleet-python (sync)"] = {"ping": facade.ping, "list": facade.list_containers, "inspect": lambda: facade.inspect_container(cid)}
        ops["docker-py"] = {"ping": client.ping, "list": client.containers, "inspect": lambda: client.inspect_container(cid)}
    print(json.dumps({"clients": list(ops)}), flush=True)
    for line in sys.stdin:
        name, op, calls = line.rstrip("\n").split("\t")
        fn, calls = ops[name][op], int(calls)
        if name == awaited_name:
            seconds = loop.run_until_complete(awaited(fn, calls))
        else:
            seconds = blocking(fn, calls)
        print(json.dumps({"client": name, "op": op, "calls": calls, "seconds": seconds}), flush=True)


main()
