"""The README's discovery example in Python: deploy a service, let the registrator register its tasks,
print the live instances, kill one and watch it leave the registry.

Run: python examples/python/discovery.py  (the testbed's inventory, or DOCKFLEET_INVENTORY).
"""

import asyncio
import os

import dockfleet

INVENTORY = os.environ.get("DOCKFLEET_INVENTORY", "/var/lib/dockfleet-testbed/fleet.toml")
SPEC = dockfleet.ServiceSpec(
    name="hello-py", image="dockfleet/busybox:latest", command=["httpd", "-f", "-p", "80", "-h", "/www"],
    replicas=3, stop_grace_period=1.0, ports=[dockfleet.ServicePort(target=80, published=0)],
)


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
    # Anything can register, not only containers: a database outside the fleet, say.
    await registry.register(dockfleet.Instance(service="legacy-db", id="db-1", address="10.250.0.11", port=5432))
    db = await registry.lookup("legacy-db")
    print(f"legacy-db at {db[0].address}:{db[0].port}")
    watch = registry.watch("hello-py")
    live: list[dockfleet.Instance] = []
    while len(live) < 3:
        event = await watch.__anext__()
        print(event.kind, [i.id for i in event.instances])
        live = await registry.lookup("hello-py")
    for i in live:
        print(f"hello-py at {i.address}:{i.port} (slot {i.metadata['slot']} on {i.metadata['host']})")
    victim = live[0]
    await fleet.host(victim.metadata["host"]).kill_container(victim.metadata["container"])
    async for event in watch:
        if event.kind == "remove":
            print(f"removed {event.instances[0].id} (killed on {victim.metadata['host']})")
            break
    task.cancel()
    await registrator.aclose()
    await dockfleet.remove_service(fleet, "hello-py")


asyncio.run(main())
# README-SNIPPET-END
