"""The Swarm-mode backend from Python: the swarm's lifecycle, a service rolled out, scaled and removed
through the same functions a Fleet takes, errors with their codes, the blocking facade, and the example
that deploys one stack on both backends."""

import subprocess
import sys

import pytest

import dockfleet
import dockfleet.sync as sync
from conftest import IMAGE, ROOT, plain_fleet, run, unique


def sleeper(prefix: str, replicas: int) -> dockfleet.ServiceSpec:
    return dockfleet.ServiceSpec(
        name=unique(prefix).replace("-", "_"), image=IMAGE, command=["sleep", "600"], replicas=replicas,
        stop_grace_period=1.0,
    )


def test_swarm_lifecycle_and_a_service():
    async def go() -> None:
        fleet = plain_fleet(dockfleet)
        with pytest.raises(dockfleet.NotFoundError):
            await dockfleet.Swarm.connect(fleet)
        with pytest.raises(dockfleet.InvalidArgumentError, match="publish_mode"):
            await dockfleet.Swarm.init(fleet, "df-1", dockfleet.SwarmOptions(publish_mode="mesh"))
        swarm = await dockfleet.Swarm.init(fleet, "df-1", dockfleet.SwarmOptions(timeout=120.0))
        try:
            assert swarm.options().timeout == 120.0 and swarm.options().publish_mode == "host"
            assert swarm.fleet().names() == ["df-1", "df-2", "df-3"]
            node = await swarm.join("df-2", "worker")
            assert (node.host, node.role, node.availability) == ("df-2", "worker", "active")
            with pytest.raises(dockfleet.InvalidArgumentError):
                await swarm.join("df-3", "boss")
            assert [(n.host, n.role) for n in await swarm.nodes()] == [("df-1", "manager"), ("df-2", "worker")]
            n = await swarm.set_node_labels("df-2", {"zone": "a", "disk": "ssd"})
            assert n.labels["disk"] == "ssd" and n.labels[dockfleet.LABEL_NODE_HOST] == "df-2"
            with pytest.raises(dockfleet.InvalidArgumentError, match="availability"):
                await swarm.set_availability("df-2", "gone")
            assert (await swarm.set_role("df-2", "manager")).role == "manager"
            assert [n.role for n in await swarm.nodes()] == ["manager", "manager"]
            assert (await swarm.set_role("df-2", "worker")).role == "worker"
            with pytest.raises(dockfleet.InvalidArgumentError, match="role"):
                await swarm.set_role("df-2", "boss")

            spec = sleeper("pysw", 2)
            spec.command = ["sh", "-c", "echo hello; exec sleep 600"]
            spec.placement = dockfleet.Placement(constraints=["disk==ssd"])
            events = [e async for e in dockfleet.rollout(swarm, spec)]
            assert (events[-1].phase, events[-1].kind) == ("update", "completed"), events
            assert sum(e.kind == "task-updated" for e in events) == 2
            st = await dockfleet.service_status(swarm, spec.name)
            assert (st.desired, st.running) == (2, 2) and {t.host for t in st.tasks} == {"df-2"}, st
            assert {t.spec_hash for t in st.tasks} == {dockfleet.spec_hash(spec)}
            st = await dockfleet.scale(swarm, spec.name, 1)
            assert (st.desired, st.running) == (1, 1)
            # Service logs: the tasks' output (the one scaled away kept by Swarm as history) with their node.
            lines = [line async for line in dockfleet.service_logs(swarm, spec.name)]
            assert lines and {(l.host, l.stream, l.message.strip()) for l in lines} == {("df-2", "stdout", "hello")}
            assert st.tasks[0].id in {l.id for l in lines}, lines

            bad = sleeper("pysw-bad", 1)
            bad.placement = dockfleet.Placement(strategy="binpack")
            with pytest.raises(dockfleet.InvalidArgumentError, match="placement.strategy"):
                [e async for e in dockfleet.rollout(swarm, bad)]
            with pytest.raises(dockfleet.NotFoundError):
                await dockfleet.service_status(swarm, bad.name)

            assert await dockfleet.remove_service(swarm, spec.name) == 1
            with pytest.raises(dockfleet.NotFoundError):
                await dockfleet.service_status(swarm, spec.name)
            with pytest.raises(dockfleet.NotFoundError):
                [line async for line in dockfleet.service_logs(swarm, spec.name)]

            # Secrets and configs: created from bytes, mounted into the tasks, refused by a fleet.
            pw, conf = unique("pysw-pw"), unique("pysw-conf")
            assert await swarm.create_secret(pw, b"hunter2", {"owner": "pytest"})
            with pytest.raises(dockfleet.ConflictError):
                await swarm.create_secret(pw, b"again")
            await swarm.create_config(conf, b"answer = 42")
            files = sleeper("pysw-files", 1)
            files.secrets = [dockfleet.ServiceFile(source=pw, target="db_password", mode=0o400)]
            files.configs = [dockfleet.ServiceFile(source=conf, target="/etc/app.conf")]
            with pytest.raises(dockfleet.InvalidArgumentError, match="secrets"):
                [e async for e in dockfleet.rollout(fleet, files)]
            events = [e async for e in dockfleet.rollout(swarm, files)]
            assert events[-1].kind == "completed", events
            task = (await dockfleet.service_status(swarm, files.name)).tasks[0]
            out = await fleet.host(task.host).exec(task.id, ["cat", "/run/secrets/db_password", "/etc/app.conf"])
            assert out.stdout == "hunter2answer = 42", out
            with pytest.raises(dockfleet.ConflictError):
                await swarm.remove_secret(pw)  # still in use
            assert await dockfleet.remove_service(swarm, files.name) == 1
            await swarm.remove_secret(pw)
            await swarm.remove_config(conf)
            with pytest.raises(dockfleet.NotFoundError):
                await swarm.remove_config(conf)
        finally:
            await swarm.dissolve()
        with pytest.raises(dockfleet.NotFoundError):
            await dockfleet.Swarm.connect(fleet)

    run(go())


def test_scale_and_status_on_a_fleet():
    async def go() -> None:
        fleet = plain_fleet(dockfleet)
        spec = sleeper("pyfl", 1)
        [e async for e in dockfleet.rollout(fleet, spec)]
        try:
            st = await dockfleet.scale(fleet, spec.name, 3)
            assert (st.desired, st.running, len(st.tasks)) == (3, 3, 3), st
            st = await dockfleet.service_status(fleet, spec.name)
            assert sorted(t.slot for t in st.tasks) == [1, 2, 3]
        finally:
            assert await dockfleet.remove_service(fleet, spec.name) == 3
        with pytest.raises(dockfleet.NotFoundError):
            await dockfleet.scale(fleet, spec.name, 2)

    run(go())


def test_the_blocking_facade_drives_a_swarm():
    swarm = sync.Swarm.init(plain_fleet(sync), "df-1")
    try:
        assert [n.host for n in swarm.nodes()] == ["df-1"]
        assert isinstance(swarm.fleet(), sync.Fleet)
        spec = sleeper("pysync", 1)
        spec.command = ["sh", "-c", "echo hi; exec sleep 600"]
        assert sync.stack_ps(swarm, "nothing-here") == []
        events = list(sync.rollout(swarm, spec))
        assert events[-1].kind == "completed"
        assert sync.service_status(swarm, spec.name).running == 1
        assert [(l.slot, l.message.strip()) for l in sync.service_logs(swarm, spec.name)] == [(1, "hi")]
        assert sync.remove_service(swarm, spec.name) == 1
    finally:
        swarm.dissolve()


def test_python_swarm_example_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "swarm.py")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    for kind in ("fleet", "swarm"):
        assert f"[{kind}] 2 service(s) deployed" in out.stdout, out.stdout
        assert f"[{kind}] shop-py_web 3/3 on" in out.stdout and f"[{kind}] removed 4 tasks" in out.stdout, out.stdout
    assert "[swarm] shop-py_db 1/1 on df-1#1" in out.stdout, out.stdout
