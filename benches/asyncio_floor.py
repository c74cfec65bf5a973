"""What asyncio alone costs per awaited call that an I/O callback completes, with no dockfleet and no
engine: a coroutine awaits a future, a reader callback on a socketpair completes it (one byte written,
one read), the task resumes. Prints the median over rounds, in µs, as one JSON line. On asyncio's
default loop, or on uvloop's with `uvloop`.

    python benches/asyncio_floor.py [AWAITS] [ROUNDS] [uvloop]
"""

import asyncio
import json
import socket
import statistics
import sys
import time


async def main(awaits: int, rounds: int) -> list[float]:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    waiting: list[asyncio.Future] = []

    def readable() -> None:
        a.recv(1)
        waiting.pop().set_result(None)

    loop.add_reader(a.fileno(), readable)
    per_await = []
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(awaits):
                f = loop.create_future()
                waiting.append(f)
                b.send(b"x")
                await f
            per_await.append((time.perf_counter() - t) / awaits * 1e6)
    finally:
        loop.remove_reader(a.fileno())
        a.close()
        b.close()
    return per_await


if __name__ == "__main__":
    awaits = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if sys.argv[3:] == ["uvloop"]:
        import uvloop

        loop, client = uvloop.new_event_loop(), "uvloop alone"
    else:
        loop, client = asyncio.new_event_loop(), "asyncio alone"
    try:
        per_await = loop.run_until_complete(main(awaits, rounds))
    finally:
        loop.close()
    print(json.dumps({"client": client, "us_per_await": statistics.median(per_await)}))
