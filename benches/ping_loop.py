"""One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
makes 100 unreported pings, then N more, awaited on asyncio's default loop (`async`) or through the
blocking facade (`sync`), or docker-py's `APIClient.ping` (`docker-py`), for comparison.

    python benches/ping_loop.py ADDRESS N async|sync|docker-py
"""

import asyncio
import sys

import dockfleet
from dockfleet import sync


def main() -> None:
    address, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    config = dockfleet.HostConfig(name="ping-loop", address=address, insecure=True)
    if mode == "docker-py":
        import docker

        client = docker.APIClient(base_url=address, version="auto")
        for _ in range(100 + n):
            client.ping()
        return
    if mode == "sync":
        host = sync.DockerHost.connect(config)
        for _ in range(100 + n):
            host.ping()
        return

    async def awaited() -> None:
        host = await dockfleet.DockerHost.connect(config)
        for _ in range(100 + n):
            await host.ping()

    asyncio.run(awaited())


main()
