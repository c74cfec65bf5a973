"""A Prometheus scrape endpoint for services on the whole fleet: every GET /metrics samples each running
task of the named services on all their hosts at once and answers with the Prometheus text
(`dockfleet_task_cpu_percent{service=...,host=...,slot=...}` and the rest), what cAdvisor serves for one
host. Point a Prometheus `scrape_configs` job at it.

Run: python examples/python/metrics.py SERVICE [SERVICE ...]
     (the testbed's inventory, or DOCKFLEET_INVENTORY; port 9464, or DOCKFLEET_METRICS_PORT; 0 picks one)
"""

import asyncio
import os
import sys

import dockfleet

INVENTORY = os.environ.get("DOCKFLEET_INVENTORY", "/var/lib/dockfleet-testbed/fleet.toml")
PORT = int(os.environ.get("DOCKFLEET_METRICS_PORT", "9464"))


async def main(services: list[str]) -> None:
    fleet = dockfleet.Fleet.from_file(INVENTORY)

    async def scrape(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        if request.startswith(b"GET /metrics "):
            try:
                sampled = await asyncio.gather(*(dockfleet.service_stats(fleet, s) for s in services))
                body = dockfleet.prometheus_text([t for tasks in sampled for t in tasks]).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            except dockfleet.DockfleetError as e:
                body, head = f"{e.code}: {e}\n".encode(), b"HTTP/1.1 500 Internal Server Error\r\n"
        else:
            body, head = b"try /metrics\n", b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(scrape, "127.0.0.1", PORT)
    print(f"serving http://127.0.0.1:{server.sockets[0].getsockname()[1]}/metrics for {', '.join(services)}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1:]))
