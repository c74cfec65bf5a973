"""The README's stack example in Python: deploy a compose stack across the fleet, show where its tasks
run, roll an update of the web tier, and take the stack down.

Run: python examples/python/stack.py  (the testbed's inventory, or DOCKFLEET_INVENTORY).
"""

import asyncio
import os
from pathlib import Path

import dockfleet

INVENTORY = os.environ.get("DOCKFLEET_INVENTORY", "/var/lib/dockfleet-testbed/fleet.toml")
COMPOSE = Path(__file__).resolve().parent.parent / "stack" / "compose.yaml"


# README-SNIPPET-START
async def main() -> None:
    fleet = dockfleet.Fleet.from_file(INVENTORY)
    stack = dockfleet.load_compose("shop-py", COMPOSE)
    async for e in dockfleet.stack_up(fleet, stack):
        if e.phase == "stack" or e.kind == "started":
            print(f"{e.service}: {e.kind} {e.message}")
    for service in await dockfleet.stack_ps(fleet, "shop-py"):
        placed = " ".join(f"{t.host}#{t.slot}" for t in service.tasks)
        print(f"{service.name} {service.running}/{service.desired} on {placed}")

    web = next(s for s in stack.services if s.name == "web").spec
    web.env = {**web.env, "VERSION": "2"}
    async for e in dockfleet.rollout(fleet, web):
        if e.kind in ("task-updated", "task-failed", "completed"):
            print(f"{e.kind} {e.done}/{e.total} {e.host} {e.message}")
    down = await dockfleet.stack_down(fleet, "shop-py", remove_volumes=True)
    print(f"removed {down.containers} containers")


asyncio.run(main())
# README-SNIPPET-END
