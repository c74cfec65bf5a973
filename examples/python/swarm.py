"""The README's Swarm example in Python: the same compose stack deployed with dockfleet's own scheduler
on the fleet's plain engines, then on Docker Swarm mode formed from the same engines. Only the line that
picks the backend differs; `deploy` is the same code for both.

Run: python examples/python/swarm.py  (the testbed's inventory, or DOCKFLEET_INVENTORY; df-1 becomes the
swarm's manager and df-2, df-3 its workers; the swarm is dissolved at the end).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import dockfleet

INVENTORY = os.environ.get("DOCKFLEET_INVENTORY", "/var/lib/dockfleet-testbed/fleet.toml")
COMPOSE = Path(__file__).resolve().parent.parent / "stack" / "compose.yaml"


# README-SNIPPET-START
async def deploy(backend: dockfleet.Fleet | dockfleet.Swarm, stack: dockfleet.Stack) -> None:
    """Up, ps, down: the same calls whatever the backend."""
    kind = type(backend).__name__.lower()
    events = [e async for e in dockfleet.stack_up(backend, stack)]
    print(f"[{kind}] {events[-1].message}")
    for service in await dockfleet.stack_ps(backend, stack.name):
        placed = " ".join(f"{t.host}#{t.slot}" for t in service.tasks)
        print(f"[{kind}] {service.name} {service.running}/{service.desired} on {placed}")
    down = await dockfleet.stack_down(backend, stack.name, remove_volumes=True)
    print(f"[{kind}] removed {down.containers} tasks")


async def main() -> None:
    fleet = dockfleet.Fleet.from_file(INVENTORY)
    stack = dockfleet.load_compose("shop-py", COMPOSE)
    await deploy(fleet, stack)  # dockfleet's own scheduler on plain engines

    swarm = await dockfleet.Swarm.init(fleet, "df-1")  # …or Docker Swarm mode on the same engines
    try:
        for host in ["df-2", "df-3"]:
            await swarm.join(host, "worker")
        await deploy(swarm, stack)  # the one line that changed
    finally:
        await swarm.dissolve()


asyncio.run(main())
# README-SNIPPET-END
