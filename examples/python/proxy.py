"""The README's proxy example in Python: deploy a service, register its tasks, put the built-in proxy in
front, see different replicas answer, render the same routes as an nginx configuration, kill a replica
and keep answering.

Run: python examples/python/proxy.py  (the testbed's inventory, or DOCKFLEET_INVENTORY).
"""

import asyncio
import os

import dockfleet

INVENTORY = os.environ.get("DOCKFLEET_INVENTORY", "/var/lib/dockfleet-testbed/fleet.toml")
SPEC = dockfleet.ServiceSpec(
    name="whoami-py", image="dockfleet/busybox:latest",
    command=["sh", "-c", "hostname > /www/index.html; exec httpd -f -p 80 -h /www"],
    replicas=3, stop_grace_period=1.0, ports=[dockfleet.ServicePort(target=80, published=0)],
)


async def get(address: str) -> str:
    """One GET through the proxy; the body (a replica's host name)."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data.split(b"\r\n\r\n", 1)[-1].decode().strip()


# README-SNIPPET-START
async def main() -> None:
    fleet = dockfleet.Fleet.from_file(INVENTORY)
    await dockfleet.deploy(fleet, SPEC)
    registry = dockfleet.Discovery.embedded()
    registrator = dockfleet.registrator(fleet, registry)

    async def pump() -> None:
        async for _ in registrator:
            pass

    task = asyncio.create_task(pump())
    routes = [dockfleet.Route(service="whoami-py")]
    proxy = await dockfleet.Proxy.start(registry, dockfleet.ProxyOptions(routes=routes))
    await proxy.wait_ready(30.0)
    while len(await registry.lookup("whoami-py")) < 3:
        await asyncio.sleep(0.1)
    for _ in range(6):
        print("answered by", await get(proxy.address()))
    # The same routes as an nginx configuration (sync_config keeps one up to date, checked and reloaded).
    instances = await registry.lookup("whoami-py")
    nginx = dockfleet.render_config(dockfleet.RenderOptions(routes=routes), instances)
    print("\n".join(line for line in nginx.splitlines() if "server 10." in line))

    victim = instances[0]
    await fleet.host(victim.metadata["host"]).kill_container(victim.metadata["container"])
    answered = 0
    for _ in range(20):
        body = await get(proxy.address())
        answered += bool(body) and "dockfleet proxy" not in body
    print(f"after killing one replica: {answered} of 20 requests answered")
    for s in proxy.stats():
        print(s.endpoint.id, "(draining)" if s.draining else "", f"{s.requests} requests, {s.errors} errors")
    await proxy.shutdown(5.0)
    task.cancel()
    await registrator.aclose()
    await dockfleet.remove_service(fleet, "whoami-py")


asyncio.run(main())
# README-SNIPPET-END
