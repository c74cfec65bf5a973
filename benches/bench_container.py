"""A throwaway container on a testbed engine for the client benchmarks to inspect: started from the test
image (`sleep 3600`) under a fixed name, removed on exit (a leftover of an interrupted run goes first)."""

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


@contextmanager
def bench_container(address: str, name: str, *run_args: str) -> Iterator[str]:
    """The ID of a running container `name` on the engine at `address`; `run_args` go to `docker run`."""
    subprocess.run([DOCKER, "-H", address, "rm", "-f", name], capture_output=True)
    cid = subprocess.run(
        [DOCKER, "-H", address, "run", "-d", "--name", name, *run_args, "dockfleet/busybox:latest", "sleep", "3600"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    try:
        yield cid
    finally:
        subprocess.run([DOCKER, "-H", address, "rm", "-f", cid], capture_output=True)
