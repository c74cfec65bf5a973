import asyncio
import itertools
import os
import subprocess
from pathlib import Path

import pytest

import dockfleet

ROOT = Path(__file__).resolve().parents[2]
TESTBED = Path(os.environ.get("DOCKFLEET_TESTBED", "/var/lib/dockfleet-testbed"))
IMAGE = "dockfleet/busybox:latest"
_counter = itertools.count()


def run(coro):
    return asyncio.run(coro)


def unique(prefix: str) -> str:
    return f"{prefix}-py{os.getpid()}-{next(_counter)}"


def run_testbed(*args: str) -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "testbed.sh"), *args], check=True)


def cert(name: str) -> str:
    return str(TESTBED / "certs" / name)


@pytest.fixture
def fleet() -> dockfleet.Fleet:
    path = TESTBED / "fleet.toml"
    assert path.exists(), f"{path} missing: run scripts/testbed.sh up"
    return dockfleet.Fleet.from_file(path)


def plain_fleet(module):
    """The three plain engines (service tests leave df-tls alone), from `dockfleet` or `dockfleet.sync`."""
    full = module.Fleet.from_file(TESTBED / "fleet.toml")
    f = module.Fleet()
    for h in full.hosts():
        if h.name != "df-tls":
            f.add(h)
    return f


def registry(module=dockfleet):
    """The testbed's registry (scripts/testbed.sh up starts it) as `RegistryAuth`, from the file the script writes."""
    env = dict(line.split("=", 1) for line in (TESTBED / "registry" / "env").read_text().split())
    return module.RegistryAuth(server=env["REGISTRY"], username=env["REGISTRY_USER"], password=env["REGISTRY_PASSWORD"])
