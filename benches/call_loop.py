"""One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
makes 100 unreported calls, then N more, awaited on asyncio's default loop (`async`) or uvloop's
(`uvloop`), or through the blocking facade (`sync`), or docker-py's `APIClient` (`docker-py`), for comparison: `ping`, or
`inspect_container(ID)` when a container ID is given.

    python benches/call_loop.py ADDRESS N async|uvloop|sync|docker-py [CONTAINER_ID]
"""

import asyncio
import sys

import dockfleet
from dockfleet import sync


def main() -> None:
    address, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cid = sys.argv[4] if len(sys.argv) > 4 else None
    config = dockfleet.HostConfig(name="call-loop", address=address, insecure=True)
    if mode == "docker-py":
        import docker

        client = docker.APIClient(base_url=address, version="auto")
        for _ in range(100 + n):
            client.inspect_container(cid) if cid else client.ping()
        return
    if mode == "sync":
        host = sync.DockerHost.connect(config)
        for _ in range(100 + n):
            host.inspect_container(cid) if cid else host.ping()
        return

    async def awaited() -> None:
        host = await dockfleet.DockerHost.connect(config)
        for _ in range(100 + n):
            await (host.inspect_container(cid) if cid else host.ping())

    if mode == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(awaited())
        finally:
            loop.close()
    else:
        asyncio.run(awaited())


main()
