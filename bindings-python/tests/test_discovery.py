"""Discovery from Python: the embedded registry, watches, TTL sessions, and the registrator."""

import asyncio

import dockfleet
from dockfleet import sync
from conftest import IMAGE, plain_fleet, run, unique


def test_register_lookup_watch_and_ttl():
    async def go():
        d = dockfleet.Discovery.embedded()
        assert d.backend == "embedded"
        watch = d.watch("web")
        first = await watch.__anext__()
        assert (first.kind, first.instances) == ("snapshot", [])
        await d.register(dockfleet.Instance(service="web", id="a", address="10.0.0.1", port=80))
        owner = d.session()
        await owner.register(dockfleet.Instance(service="web", id="b", address="10.0.0.2", port=80, ttl=0.3))
        assert [i.id for i in await d.lookup("web")] == ["a", "b"]
        await d.set_health("web", "a", "critical")
        assert [i.id for i in await d.lookup("web")] == ["b"]
        opts = dockfleet.LookupOptions(include_unhealthy=True)
        assert [i.id for i in await d.lookup("web", opts)] == ["a", "b"]
        kinds = [(await watch.__anext__()).kind for _ in range(3)]
        assert kinds == ["insert", "insert", "health"]
        del owner  # the registrant goes: its TTL'd entry expires
        gone = await asyncio.wait_for(watch.__anext__(), 3)
        assert (gone.kind, gone.instances[0].id) == ("remove", "b")
        await watch.aclose()
        try:
            await d.register(dockfleet.Instance(service="web", id="c", address="10.0.0.3", port=0))
            raise AssertionError("port 0 was accepted")
        except dockfleet.InvalidArgumentError as e:
            assert "port" in str(e)

    run(go())


def test_sync_registrator_registers_a_published_container():
    fleet = plain_fleet(sync)
    d = sync.Discovery.embedded()
    name = unique("pydisc")
    host = fleet.host("df-3")
    spec = sync.ContainerSpec(
        image=IMAGE, command=["httpd", "-f", "-p", "80", "-h", "/www"],
        labels={"dockfleet.test": name, "dockfleet.discovery.service": name},
        ports=[sync.PortMapping(container_port=80, host_port=0)],
    )
    cid = host.create_container(spec)
    host.start_container(cid)
    events = sync.registrator(fleet, d, sync.RegistratorOptions(resync=1.0))
    try:
        for e in events:
            if e.kind == "register" and e.service == name:
                break
        found = d.lookup(name)
        assert len(found) == 1 and found[0].address == "10.250.0.13" and found[0].metadata["host"] == "df-3"
    finally:
        events.close()
        host.remove_container(cid, force=True)


ETCD = "http://127.0.0.1:23790"

REGISTRATOR_CHILD = """
import sys
from dockfleet import sync
fleet = sync.Fleet.from_file(sys.argv[1])
d = sync.Discovery.etcd(sync.EtcdConfig(endpoints=[sys.argv[2]], prefix=sys.argv[3]))
for e in sync.registrator(fleet, d, sync.RegistratorOptions(resync=1.0, ttl=1.0)):
    print(e.kind, e.service, flush=True)
"""


def test_a_killed_registrator_leaves_nothing_in_etcd_after_its_ttl():
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT, TESTBED

    subprocess.run(["bash", str(ROOT / "scripts" / "etcd.sh"), "up"], check=True)
    fleet = plain_fleet(sync)
    name = unique("pyetcd")
    prefix = f"/dockfleet-test/{name}"
    host = fleet.host("df-1")
    cid = host.create_container(sync.ContainerSpec(
        image=IMAGE, command=["httpd", "-f", "-p", "80", "-h", "/www"],
        labels={"dockfleet.test": name, "dockfleet.discovery.service": name},
        ports=[sync.PortMapping(container_port=80, host_port=0)],
    ))
    host.start_container(cid)
    d = sync.Discovery.etcd(sync.EtcdConfig(endpoints=[ETCD], prefix=prefix))
    assert d.backend == "etcd"
    child = subprocess.Popen([sys.executable, "-c", REGISTRATOR_CHILD, str(TESTBED / "fleet.toml"), ETCD, prefix],
                             stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith(f"register {name}"):
                break
        assert len(d.lookup(name)) == 1
        time.sleep(2.5)
        assert len(d.lookup(name)) == 1, "kept alive while the registrator runs"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        while d.lookup(name, sync.LookupOptions(include_unhealthy=True)):
            assert time.monotonic() - killed < 1.0 + 1.0, "still registered after TTL + 1 s"
            time.sleep(0.05)
        print(f"gone {time.monotonic() - killed:.2f} s after the kill")
    finally:
        if child.poll() is None:
            child.kill()
        host.remove_container(cid, force=True)


def test_python_discovery_example_runs():
    import subprocess
    import sys

    from conftest import ROOT

    out = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "discovery.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("hello-py at 10.250.0.") == 3 and "removed hello-py." in out.stdout, out.stdout


def test_python_proxy_example_runs():
    import subprocess
    import sys

    from conftest import ROOT

    out = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "proxy.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    answers = {line for line in out.stdout.splitlines() if line.startswith("answered by")}
    assert len(answers) >= 2, out.stdout
    assert "after killing one replica: 20 of 20 requests answered" in out.stdout, out.stdout

