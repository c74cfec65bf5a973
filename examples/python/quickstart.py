"""The README's Python snippet: connect to one engine, run a container, read its output.

Run: python examples/python/quickstart.py  (testbed host df-1 by default, or DOCKFLEET_EXAMPLE_HOST).
"""

import asyncio
import os

import dockfleet

ADDRESS = os.environ.get("DOCKFLEET_EXAMPLE_HOST", "tcp://10.250.0.11:2375")


# README-SNIPPET-START
async def main() -> None:
    host = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="df-1", address=ADDRESS, insecure=True))
    info = await host.info()
    print(f"{host.name} runs Docker {info.engine_version} with {info.cpus} CPUs")

    spec = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["echo", "hello from dockfleet"])
    cid = await host.create_container(spec)
    await host.start_container(cid)
    code = await host.wait_container(cid)
    output = "".join([line.message async for line in host.logs(cid)])
    print(f"exit {code}: {output.strip()}")
    await host.remove_container(cid, force=True)


asyncio.run(main())
# README-SNIPPET-END

# The same with the blocking facade:
from dockfleet import sync  # noqa: E402

host = sync.DockerHost.connect(dockfleet.HostConfig(name="df-1", address=ADDRESS, insecure=True))
print("sync ping:", round(host.ping().latency * 1000, 2), "ms")
