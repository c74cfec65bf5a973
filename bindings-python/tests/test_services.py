"""Deploying a service from Python onto the testbed's engines."""

import asyncio
import time

import pytest

import dockfleet
from dockfleet import sync
from conftest import IMAGE, TESTBED, plain_fleet, registry, run, unique



def test_deploy_observe_replan_and_remove():
    fleet = plain_fleet(dockfleet)
    name = unique("pysvc").replace("-", "_")
    spec = dockfleet.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=3, stop_grace_period=1.0)

    async def go():
        d = await dockfleet.deploy(fleet, spec)
        assert [a.kind for a in d.plan.actions] == ["create"] * 3 and len(d.report.created) == 3
        o = await dockfleet.observe(fleet, name)
        assert sorted(t.host for t in o.tasks) == ["df-1", "df-2", "df-3"]
        assert all(t.spec_hash == dockfleet.spec_hash(spec) for t in o.tasks)
        assert dockfleet.plan(spec, o).actions == []
        assert await dockfleet.remove_service(fleet, name) == 3

    run(go())


def test_sync_deploy():
    fleet = plain_fleet(sync)
    name = unique("pysync").replace("-", "_")
    spec = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0,
                            placement=sync.Placement(constraints=["role==manager"]))
    d = sync.deploy(fleet, spec)
    assert {t.host for t in d.report.created} == {"df-1"}
    assert len(sync.observe(fleet, name).tasks) == 2
    assert sync.remove_service(fleet, name) == 2


def test_a_service_pulls_its_image_with_the_fleets_registry_credentials():
    fleet = plain_fleet(sync)
    auth = registry(sync)
    name = unique("pypull").replace("-", "_")
    remote = f"{auth.server}/dockfleet-test/{name}:1"
    df1 = fleet.host("df-1")
    df1.tag_image(IMAGE, remote)
    list(df1.push_image(remote, sync.PushOptions(auth=auth)))
    df1.remove_image(remote)
    spec = sync.ServiceSpec(name=name, image=remote, command=["sleep", "600"], replicas=3, stop_grace_period=1.0,
                            pull_policy="missing")
    with pytest.raises(sync.UnauthorizedError):
        sync.deploy(fleet, spec)
    with pytest.raises(sync.InvalidArgumentError) as e:
        fleet.set_registry_auth(sync.RegistryAuth(server=auth.server))
    assert "auth.username" in str(e.value)
    fleet.set_registry_auth(auth)
    assert len(sync.deploy(fleet, spec).report.created) == 3
    assert all(h.image_exists(remote) for h in fleet.hosts())
    assert sync.remove_service(fleet, name) == 3
    for h in fleet.hosts():
        h.remove_image(remote)


def test_a_shutdown_delay_holds_a_removed_task_out_of_service_before_its_stop():
    fleet = plain_fleet(sync)
    name = unique("pydrain").replace("-", "_")
    spec = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0,
                            shutdown_delay=1.0)
    assert spec.shutdown_delay == 1.0 and sync.ServiceSpec().shutdown_delay == 0.0
    sync.deploy(fleet, spec)
    spec.replicas = 1
    t = time.monotonic()
    d = sync.deploy(fleet, spec)
    assert len(d.report.removed) == 1 and time.monotonic() - t >= 1.0, "removed before its delay"
    assert len(sync.observe(fleet, name).tasks) == 1
    assert sync.remove_service(fleet, name) == 1
    spec.shutdown_delay = 7200.0
    with pytest.raises(dockfleet.InvalidArgumentError, match="shutdown_delay"):
        sync.deploy(fleet, spec)
    assert sync.observe(fleet, name).tasks == []


def test_service_logs_merge_the_tasks_output_with_their_tasks():
    fleet = plain_fleet(sync)
    name = unique("pylogs").replace("-", "_")
    spec = sync.ServiceSpec(name=name, image=IMAGE, command=["sh", "-c", "echo hello from $(hostname); exec sleep 600"],
                            replicas=3, stop_grace_period=1.0)
    created = sync.deploy(fleet, spec).report.created

    async def follow():
        lines = []
        stream = dockfleet.service_logs(plain_fleet(dockfleet), name, dockfleet.LogOptions(follow=True))
        async for line in stream:
            lines.append(line)
            if len(lines) == 3:
                break
        await stream.aclose()
        return lines

    lines = run(asyncio.wait_for(follow(), 30))
    assert sorted((l.id, l.slot, l.host, l.stream, l.message.strip()) for l in lines) == sorted(
        (t.id, t.slot, t.host, "stdout", f"hello from {t.id[:12]}") for t in created)
    # The sync facade, not followed: the stream ends by itself.
    assert sorted(l.slot for l in sync.service_logs(fleet, name, sync.LogOptions(tail=1))) == [1, 2, 3]
    assert sync.remove_service(fleet, name) == 3
    assert list(sync.service_logs(fleet, name)) == []


def test_service_stats_sample_each_running_task_and_read_as_prometheus_text():
    from prometheus_client.parser import text_string_to_metric_families

    fleet = plain_fleet(sync)
    name = unique("pystats").replace("-", "_")
    spec = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0)
    created = sync.deploy(fleet, spec).report.created
    samples = run(dockfleet.service_stats(plain_fleet(dockfleet), name))
    assert [(s.slot, s.host, s.stats.id, s.service) for s in samples] == sorted(
        (t.slot, t.host, t.id, name) for t in created)
    assert all(s.stats.pids >= 1 and 0 < s.stats.memory_bytes <= s.stats.memory_limit_bytes for s in samples)
    # Prometheus' own parser reads the text: every family, one sample per task, the task's labels.
    families = {f.name: f for f in text_string_to_metric_families(sync.prometheus_text(samples))}
    assert families["dockfleet_task_network_receive_bytes"].type == "counter"
    assert families["dockfleet_task_memory_bytes"].type == "gauge"
    assert len(families) == 8
    mem = families["dockfleet_task_memory_bytes"].samples
    assert [(m.labels["slot"], m.labels["host"], m.labels["id"], m.value) for m in mem] == [
        (str(s.slot), s.host, s.stats.id, float(s.stats.memory_bytes)) for s in samples]
    assert [s.slot for s in sync.service_stats(fleet, name)] == [1, 2]
    assert sync.remove_service(fleet, name) == 2
    assert sync.service_stats(fleet, name) == []
    with pytest.raises(dockfleet.InvalidArgumentError, match="service"):
        sync.service_stats(fleet, "no/such")


def test_service_exec_runs_in_each_task_or_one_slot():
    fleet = plain_fleet(sync)
    name = unique("pyexec").replace("-", "_")
    spec = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0)
    created = sync.deploy(fleet, spec).report.created
    script = ["sh", "-c", "echo $WHO $(hostname); exit 4"]
    runs = run(dockfleet.service_exec(plain_fleet(dockfleet), name, script,
                                      dockfleet.ServiceExecOptions(env={"WHO": "py"}, parallelism=1)))
    assert [(r.slot, r.id, r.exit_code, r.stdout.strip(), r.error_code) for r in runs] == sorted(
        (t.slot, t.id, 4, f"py {t.id[:12]}", None) for t in created)
    one = sync.service_exec(fleet, name, ["hostname"], sync.ServiceExecOptions(slot=2))
    assert [(r.slot, r.exit_code) for r in one] == [(2, 0)]
    with pytest.raises(dockfleet.NotFoundError):
        sync.service_exec(fleet, name, ["hostname"], sync.ServiceExecOptions(slot=7))
    with pytest.raises(dockfleet.InvalidArgumentError, match="command"):
        sync.service_exec(fleet, name, [])
    assert sync.remove_service(fleet, name) == 2


def test_the_python_metrics_example_serves_the_tasks_figures():
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from conftest import ROOT

    fleet = plain_fleet(sync)
    name = unique("pymetrics").replace("-", "_")
    sync.deploy(fleet, sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2,
                                        stop_grace_period=1.0))
    example = subprocess.Popen([sys.executable, str(ROOT / "examples" / "python" / "metrics.py"), name],
                               env={**os.environ, "DOCKFLEET_METRICS_PORT": "0"}, stdout=subprocess.PIPE, text=True)
    try:
        url = example.stdout.readline().split()[1]
        body = urllib.request.urlopen(url, timeout=60).read().decode()
        families = {f.name: f for f in text_string_to_metric_families(body)}
        pids = families["dockfleet_task_pids"].samples
        assert sorted((p.labels["service"], p.labels["slot"]) for p in pids) == [(name, "1"), (name, "2")], body
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url.replace("/metrics", "/"), timeout=10)
    finally:
        example.terminate()
        example.wait(10)
        sync.remove_service(fleet, name)


def test_supervise_heals_a_killed_task():
    fleet = plain_fleet(dockfleet)
    name = unique("pyheal").replace("-", "_")
    spec = dockfleet.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0,
                                 restart_policy=dockfleet.ServiceRestartPolicy(delay=0.2))

    async def go():
        passes = dockfleet.supervise(fleet, spec, dockfleet.SuperviseOptions(resync=30.0))
        first = await passes.__anext__()
        assert first.trigger == "start" and len(first.deployment.report.created) == 2
        victim = first.deployment.report.created[0]
        await fleet.host(victim.host).kill_container(victim.id)
        healed = await asyncio.wait_for(passes.__anext__(), 10)
        assert healed.trigger.startswith("event: ") and healed.deployment.report.removed == [victim.id]
        await passes.aclose()
        assert await dockfleet.remove_service(fleet, name) == 2

    run(go())


def _rolling_spec(module, name):
    return module.ServiceSpec(
        name=name, image=IMAGE, command=["sleep", "600"], replicas=2, stop_grace_period=1.0,
        update_config=module.UpdateConfig(order="start-first", parallelism=2, monitor=0.2),
    )


def test_rollout_progress_and_rollback():
    fleet = plain_fleet(dockfleet)
    name = unique("pyroll").replace("-", "_")
    spec = _rolling_spec(dockfleet, name)
    options = dockfleet.RolloutOptions(ready_timeout=15.0)

    async def go():
        first = [e async for e in dockfleet.rollout(fleet, spec, options)]
        assert [e.kind for e in first] == ["started", "completed"]
        v2 = _rolling_spec(dockfleet, name)
        v2.env = {"VERSION": "2"}
        events = [e async for e in dockfleet.rollout(fleet, v2, options)]
        assert [e.kind for e in events] == ["started", "task-started", "task-started", "task-updated", "task-updated", "completed"]
        assert [(e.done, e.total) for e in events if e.kind == "task-updated"] == [(1, 2), (2, 2)]
        o = await dockfleet.observe(fleet, name)
        assert {t.spec_hash for t in o.tasks} == {dockfleet.spec_hash(v2)}
        assert {t.previous_spec_hash for t in o.tasks} == {dockfleet.spec_hash(spec)}
        assert set(o.specs) == {dockfleet.spec_hash(spec), dockfleet.spec_hash(v2)}
        # A forced rollout restarts every task of the same spec and keeps what a rollback returns to.
        ids = {t.id for t in o.tasks}
        forced = [e async for e in dockfleet.rollout(fleet, v2, dockfleet.RolloutOptions(ready_timeout=15.0, force=True))]
        assert [e.kind for e in forced].count("task-updated") == 2 and forced[-1].kind == "completed"
        o = await dockfleet.observe(fleet, name)
        assert len(o.tasks) == 2 and not ids & {t.id for t in o.tasks}
        assert {(t.spec_hash, t.previous_spec_hash) for t in o.tasks} == {(dockfleet.spec_hash(v2), dockfleet.spec_hash(spec))}
        back = [e async for e in dockfleet.rollback(fleet, name, options)]
        assert (back[-1].phase, back[-1].kind, back[-1].message) == ("rollback", "completed", "rolled back")
        o = await dockfleet.observe(fleet, name)
        assert {t.spec_hash for t in o.tasks} == {dockfleet.spec_hash(spec)}
        await dockfleet.remove_service(fleet, name)

    run(go())


def test_sync_rollout_and_errors():
    fleet = plain_fleet(sync)
    name = unique("pysroll").replace("-", "_")
    spec = _rolling_spec(sync, name)
    with sync.rollout(fleet, spec) as events:
        assert [e.kind for e in events][-1] == "completed"
    bad = _rolling_spec(sync, name)
    bad.ports = [sync.ServicePort(target=80, published=18081)]
    try:
        list(sync.rollout(fleet, bad))
        raise AssertionError("start-first with a fixed published port was accepted")
    except sync.InvalidArgumentError as e:
        assert e.code == "invalid_argument" and "update_config.order" in str(e)
    try:
        list(sync.rollback(fleet, unique("pynone")))
        raise AssertionError("rollback of an unknown service succeeded")
    except sync.NotFoundError as e:
        assert e.code == "not_found"
    assert sync.remove_service(fleet, name) == 2


ROLLOUT_CHILD = """
import sys
from dockfleet import sync
fleet = sync.Fleet.from_file(sys.argv[1])
spec = sync.ServiceSpec(name=sys.argv[2], image="dockfleet/busybox:latest", command=["sleep", "600"], replicas=3,
                        stop_grace_period=1.0, env={"VERSION": "2"},
                        update_config=sync.UpdateConfig(parallelism=1, monitor=0.5))
for e in sync.rollout(fleet, spec):
    print(e.kind, e.id or "", flush=True)
"""


def test_a_killed_deploying_process_is_finished_by_the_next_run():
    import signal
    import subprocess
    import sys

    fleet = plain_fleet(sync)
    name = unique("pykill").replace("-", "_")
    v1 = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=3, stop_grace_period=1.0,
                          update_config=sync.UpdateConfig(parallelism=1, monitor=0.5))
    sync.deploy(fleet, v1)
    # A separate process rolls out v2 and is SIGKILLed right after its first task is updated.
    inventory = TESTBED / "fleet.toml"
    child = subprocess.Popen([sys.executable, "-c", ROLLOUT_CHILD, str(inventory), name], stdout=subprocess.PIPE, text=True)
    updated = None
    for line in child.stdout:
        kind, _, cid = line.strip().partition(" ")
        if kind == "task-updated":
            updated = cid
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=30)
    assert updated, "the child never updated a task"
    # Whatever the child left (a slot mid-replacement included), the next run adopts and finishes it.
    v2 = sync.ServiceSpec(name=name, image=IMAGE, command=["sleep", "600"], replicas=3, stop_grace_period=1.0,
                          env={"VERSION": "2"}, update_config=sync.UpdateConfig(parallelism=1, monitor=0.5))
    events = list(sync.rollout(fleet, v2))
    assert events[-1].kind == "completed", events
    o = sync.observe(fleet, name)
    assert len(o.tasks) == 3 and all(t.state == "running" and t.spec_hash == sync.spec_hash(v2) for t in o.tasks), o.tasks
    assert updated in [t.id for t in o.tasks], "a task updated before the kill was restarted"
    sync.remove_service(fleet, name)
