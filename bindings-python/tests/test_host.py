"""The Python binding against the testbed's real engines: async API and the blocking facade."""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dockfleet
from dockfleet import sync
from conftest import IMAGE, ROOT, TESTBED, cert, registry, run, unique


def http_get(host: str, port: int) -> str:
    for _ in range(50):
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                return data.decode()
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no answer from {host}:{port}")


def test_every_host_answers(fleet):
    assert fleet.names() == ["df-1", "df-2", "df-3", "df-tls"]
    assert len(fleet) == 4

    async def go():
        for h in fleet.hosts():
            ping = await h.ping()
            assert ping.api_version.startswith("1.") and ping.latency > 0
            info = await h.info()
            assert info.cpus >= 1 and info.memory_bytes > 0 and "runc" in info.runtimes
            for k, v in h.labels.items():
                assert info.labels[k] == v

    run(go())
    assert [h.name for h in fleet.select(["role=manager"])] == ["df-1"]


def test_unix_socket_and_tls_env(monkeypatch):
    async def go():
        h = await dockfleet.DockerHost.connect(
            dockfleet.HostConfig(name="df-1-unix", address="unix:///run/dockfleet-testbed/df-1.sock")
        )
        assert (await h.info()).labels["role"] == "manager"
        monkeypatch.setenv("DOCKER_HOST", "tcp://10.250.0.60:2376")
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", cert("client"))
        t = await dockfleet.DockerHost.from_env("env")
        assert (await t.info()).labels["tls"] == "true"

    run(go())


def test_container_lifecycle(fleet):
    h = fleet.host("df-2")
    tag = unique("life")

    async def go():
        spec = dockfleet.ContainerSpec(
            name=tag,
            image=IMAGE,
            command=["sh", "-c", "echo hello-$GREETING; exec httpd -f -p 80 -h /www"],
            env={"GREETING": "py"},
            labels={"dockfleet.test": tag},
            ports=[dockfleet.PortMapping(container_port=80, host_port=0)],
            healthcheck=dockfleet.Healthcheck(test=["CMD-SHELL", "true"], interval=0.5, retries=1),
            memory_bytes=64 * 1024 * 1024,
            mounts=[
                dockfleet.Mount(source="/run/netns", target="/netns", read_only=True, propagation="rslave"),
                dockfleet.Mount(source=f"{tag}-data", target="/data", no_copy=True),
            ],
        )
        assert spec.healthcheck.interval == 0.5
        cid = await h.create_container(spec)
        await h.start_container(cid)
        d = await h.inspect_container(cid)
        assert d.state.running and d.name == tag and d.labels["dockfleet.test"] == tag
        port = next(p.host_port for p in d.ports if p.container_port == 80)
        assert http_get("10.250.0.12", port).endswith("ok\n")
        listed = await h.list_containers(dockfleet.ListContainersOptions(all=True, labels=[f"dockfleet.test={tag}"]))
        assert [c.id for c in listed] == [cid]
        # Off the host network too, the exposed ports are the ports the container asked for, unbound.
        assert listed[0].network_mode == d.network_mode == "default"
        assert [(p.container_port, p.host_port, p.protocol) for p in d.exposed_ports] == [(80, None, "tcp")]
        lines = [line async for line in h.logs(cid)]
        assert any("hello-py" in line.message and line.stream == "stdout" for line in lines)
        # The testbed's /run/netns is a shared mount: an rslave bind follows it as a slave.
        mountinfo = (await h.exec(cid, ["grep", " /netns ", "/proc/self/mountinfo"])).stdout
        assert " master:" in mountinfo, mountinfo
        out = await h.exec(cid, ["sh", "-c", "echo out; echo err >&2; exit 5"])
        assert (out.exit_code, out.stdout, out.stderr) == (5, "out\n", "err\n")
        stats = await h.stats(cid)
        assert stats.memory_bytes > 0 and stats.pids >= 1
        await h.rename_container(cid, f"{tag}.renamed")
        assert (await h.inspect_container(cid)).name == f"{tag}.renamed"
        try:
            await h.rename_container(cid, "no spaces")
            raise AssertionError("a bad name was accepted")
        except dockfleet.InvalidArgumentError as e:
            assert e.code == "invalid_argument" and "name" in str(e)
        assert (await h.inspect_container(cid)).name == f"{tag}.renamed"
        await h.stop_container(cid, grace=1.0)
        assert await h.wait_container(cid) in (0, 137, 143)
        await h.remove_container(cid, force=True)
        await h.remove_volume(f"{tag}-data")
        assert await h.list_containers(dockfleet.ListContainersOptions(all=True, labels=[f"dockfleet.test={tag}"])) == []

    run(go())


def test_events_resume_from_timestamp(fleet):
    h = fleet.host("df-1")
    tag = unique("ev")

    async def go():
        opts = dockfleet.EventOptions(filters={"type": ["container"], "label": [f"dockfleet.test={tag}"]})
        live = h.events(opts)
        cid = await h.create_container(
            dockfleet.ContainerSpec(image=IMAGE, command=["sh", "-c", "exit 3"], labels={"dockfleet.test": tag})
        )
        await h.start_container(cid)
        assert await h.wait_container(cid) == 3
        seen = []
        async for e in live:
            seen.append(e)
            if len(seen) == 3:
                break
        await live.aclose()
        assert [e.action for e in seen] == ["create", "start", "die"]
        assert seen[2].attributes["exitCode"] == "3" and seen[0].host == "df-1"
        replay = dockfleet.EventOptions(
            since_nanos=seen[1].time_nanos, until_nanos=seen[2].time_nanos + 1_000_000, filters=opts.filters
        )
        assert [e.action async for e in h.events(replay)] == ["start", "die"]
        await h.remove_container(cid, force=True)

    run(go())


def test_build_and_copy_with_progress(fleet, tmp_path: Path):
    src, dst = fleet.host("df-1"), fleet.host("df-3")
    tag = f"dockfleet/py-copy:{unique('c')}"
    # The stage after the target fails: the build stops before it.
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE} AS base\nRUN echo {tag} > /marker\nFROM base AS broken\nRUN false\n")

    async def go():
        events = [e async for e in src.build_image(tmp_path, dockfleet.BuildOptions(tag=tag, target="base", labels={"team": "py"}))]
        assert events[-1].kind == "done" and events[-1].image_id.startswith("sha256:")
        assert (await src.inspect_image(tag)).labels["team"] == "py"
        assert any(e.kind == "step" for e in events)
        progress = [p async for p in dockfleet.copy_image(src, dst, tag)]
        assert progress[0].bytes == 0 and progress[-1].done and progress[-1].bytes > 1_000_000
        assert all(a.bytes <= b.bytes for a, b in zip(progress, progress[1:]))
        assert (progress[-1].source, progress[-1].target) == ("df-1", "df-3")
        assert await dst.image_exists(tag)
        # export → import through Python, as a stream and as bytes
        await dst.remove_image(tag, force=True)
        assert await dst.import_image(src.export_image(tag)) == [tag]
        blob = b"".join([chunk async for chunk in src.export_image(tag)])
        await dst.remove_image(tag, force=True)
        assert await dst.import_image(blob) == [tag]
        for h in (src, dst):
            await h.remove_image(tag, force=True)

    run(go())


def test_push_and_pull_through_the_testbed_registry(fleet, tmp_path: Path):
    auth = registry()
    assert "<hidden>" in repr(auth) and auth.password not in repr(auth)
    remote = f"{auth.server}/dockfleet-test/py:{unique('r')}"

    async def go():
        src, dst = fleet.host("df-1"), fleet.host("df-3")
        # An image with a layer of its own, which no other host has.
        (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE}\nRUN echo {remote} > /marker\n")
        [e async for e in src.build_image(tmp_path, dockfleet.BuildOptions(tag=remote))]
        with pytest.raises(dockfleet.UnauthorizedError) as e:
            [p async for p in src.push_image(remote)]
        assert e.value.code == "unauthorized" and auth.server in str(e.value)
        pushed = [p async for p in src.push_image(remote, dockfleet.PushOptions(auth=auth))]
        assert pushed[-1].done and pushed[-1].digest.startswith("sha256:")
        assert not await dst.image_exists(remote)
        pulled = [p async for p in dst.pull_image(remote, dockfleet.PullOptions(auth=auth))]
        assert pulled[-1].done and pulled[-1].digest == pushed[-1].digest
        assert any(p.status == "Pull complete" and p.layer for p in pulled)
        assert (await dst.inspect_image(remote)).id == (await src.inspect_image(remote)).id
        with pytest.raises(dockfleet.NotFoundError):
            [p async for p in dst.pull_image(remote + "-nosuch", dockfleet.PullOptions(auth=auth))]
        await dst.remove_image(remote)
        await src.remove_image(remote, force=True)

    run(go())

    # The blocking facade, with the credentials read from a docker CLI config file as `docker login` writes it.
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {auth.server: {"auth": token}}}))
    found = sync.docker_config_auth(auth.server, tmp_path / "config.json")
    assert found == auth
    assert sync.docker_config_auth("elsewhere.example", tmp_path / "config.json") is None
    h = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    h.tag_image(IMAGE, remote)
    assert list(h.push_image(remote, sync.PushOptions(auth=found)))[-1].done
    h.remove_image(remote)
    events = list(h.pull_image(remote, sync.PullOptions(auth=found)))
    assert events[-1].done and h.image_exists(remote)
    h.remove_image(remote)
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        list(h.pull_image(remote, sync.PullOptions(auth=dockfleet.RegistryAuth(server="a/b", username="u"))))
    assert "options.auth.server" in str(e.value)


def test_credentials_from_a_docker_credential_helper_pull_from_the_registry(tmp_path: Path, monkeypatch):
    # A credential helper on PATH, as `docker login` with `credsStore` uses one: `get`, the registry on
    # stdin, its credentials as JSON on stdout.
    auth = registry()
    helper = tmp_path / "docker-credential-dftest"
    helper.write_text(
        "#!/bin/sh\n[ \"$(cat)\" = '%s' ] || { echo 'credentials not found in native keychain'; exit 1; }\n"
        "echo '{\"ServerURL\": \"%s\", \"Username\": \"%s\", \"Secret\": \"%s\"}'\n"
        % (auth.server, auth.server, auth.username, auth.password)
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "dftest", "auths": {auth.server: {}}}))
    found = dockfleet.docker_config_auth(auth.server, tmp_path / "config.json")
    assert found == auth
    assert dockfleet.docker_config_auth("elsewhere.example", tmp_path / "config.json") is None
    h = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-3")
    remote = f"{auth.server}/dockfleet-test/helper:{unique('h')}"
    h.tag_image(IMAGE, remote)
    assert list(h.push_image(remote, sync.PushOptions(auth=found)))[-1].done
    h.remove_image(remote)
    assert list(h.pull_image(remote, sync.PullOptions(auth=found)))[-1].done
    h.remove_image(remote)
    (tmp_path / "config.json").write_text(json.dumps({"credHelpers": {auth.server: "missing-helper"}}))
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        dockfleet.docker_config_auth(auth.server, tmp_path / "config.json")
    assert "docker-credential-missing-helper" in str(e.value)


def test_probe_reports_down_hosts(fleet):
    ghost = fleet.add_docker(dockfleet.HostConfig(name="ghost", address="tcp://10.250.0.13:2399", insecure=True))
    assert ghost.name == "ghost"
    statuses = run(fleet.probe(dockfleet.ProbeOptions(timeout=5.0)))
    assert [s.name for s in statuses] == ["df-1", "df-2", "df-3", "df-tls", "ghost"]
    assert all(s.reachable and s.info.cpus > 0 for s in statuses[:4])
    assert not statuses[4].reachable and statuses[4].error_code == "engine_unreachable"


def test_sync_facade(fleet):
    f = sync.Fleet.from_file(TESTBED / "fleet.toml")
    h = f.host("df-2")
    assert isinstance(h, sync.DockerHost) and h.ping().latency > 0
    # Lists come back wrapped where they hold native objects, and as they are otherwise.
    assert all(isinstance(x, sync.DockerHost) for x in f.hosts()) and len(f.hosts()) == len(f)
    assert all(isinstance(c, sync.ContainerSummary) for c in h.list_containers(sync.ListContainersOptions(all=True)))
    tag = unique("sync")
    cid = h.create_container(sync.ContainerSpec(image=IMAGE, command=["echo", "blocking"], labels={"dockfleet.test": tag}))
    h.start_container(cid)
    assert h.wait_container(cid) == 0
    assert "".join(line.message for line in h.logs(cid)) == "blocking\n"
    with h.events(sync.EventOptions(filters={"label": [f"dockfleet.test={tag}"]})) as events:
        h.remove_container(cid)
        assert next(events).action == "destroy"
    assert [s.reachable for s in f.probe()] == [True] * 4
    try:
        h.inspect_container(cid)
        raise AssertionError("expected NotFoundError")
    except sync.NotFoundError as e:
        assert e.code == "not_found"


def test_python_example_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "quickstart.py")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "exit 0: hello from dockfleet" in out.stdout and "sync ping:" in out.stdout


def test_cancelling_a_pending_call_is_clean(fleet):
    h = fleet.host("df-1")

    async def go():
        # Only events of a label nothing carries: the call stays pending whatever else the engine does.
        quiet = dockfleet.EventOptions(filters={"label": [f"dockfleet.test={unique('none')}"]})
        events = h.events(quiet)
        try:
            await asyncio.wait_for(events.__anext__(), 0.2)
            raise AssertionError("no event was expected")
        except asyncio.TimeoutError:
            pass
        await events.aclose()
        assert [e async for e in events] == []
        assert (await h.ping()).latency > 0

    run(go())


def test_sync_facade_inside_a_running_loop():
    host = sync.DockerHost.connect(dockfleet.HostConfig(name="df-1", address="tcp://10.250.0.11:2375", insecure=True))

    async def handler():
        # A blocking call from code that is itself inside an event loop (a notebook, an async handler).
        return host.ping().api_version

    assert run(handler()).startswith("1.")


def test_a_blocking_call_lets_other_threads_run(fleet):
    """A sync call waits with the GIL released: while one thread blocks on an event, another pings and
    then causes that very event (with the GIL held the first would block the second, and this hang)."""
    import threading

    h = sync.DockerHost.connect(dockfleet.HostConfig(name="df-1", address="tcp://10.250.0.11:2375", insecure=True))
    tag = unique("threads")
    got: list[str] = []
    with h.events(sync.EventOptions(filters={"label": [f"dockfleet.test={tag}"], "event": ["create"]})) as events:
        waiter = threading.Thread(target=lambda: got.append(next(events).action), daemon=True)
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive() and h.ping().latency > 0
        cid = h.create_container(sync.ContainerSpec(image=IMAGE, command=["true"], labels={"dockfleet.test": tag}))
        waiter.join(30)
    h.remove_container(cid, force=True)
    assert got == ["create"]


def interrupted(script: str) -> str:
    """Runs `script` in a child Python, sends it SIGINT 0.3 s after it prints "waiting", and returns
    the rest of its output (asserting it exited 0)."""
    import signal

    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline() == "waiting\n"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    return out


def test_ctrl_c_interrupts_a_blocking_call():
    """SIGINT while a sync call waits raises KeyboardInterrupt at once; the call is cancelled and the
    host keeps working."""
    script = """
import sys, dockfleet
from dockfleet import sync
h = sync.DockerHost.connect(dockfleet.HostConfig(name="df-1", address="tcp://10.250.0.11:2375", insecure=True))
quiet = sync.EventOptions(filters={"label": ["dockfleet.test=nothing-carries-this"]})
events = h.events(quiet)
print("waiting", flush=True)
try:
    next(events)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("ping", h.ping().latency > 0, flush=True)
"""
    assert interrupted(script) == "interrupted\nping True\n"


def test_one_host_serves_threads_that_come_and_go_and_the_event_loop():
    """A blocking host call does its I/O on a runtime of the calling thread's own, with connections of
    its own: threads that used the host and ended, and the async API on the same host, never wait on
    another runtime's connections (a hang, before) and every call answers."""
    import threading

    h = sync.DockerHost.connect(dockfleet.HostConfig(name="df-2", address="tcp://10.250.0.12:2375", insecure=True))
    assert h.ping().latency > 0  # an idle connection of the main thread's runtime from here on
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert h.ping().latency > 0
            assert isinstance(h.list_containers(), list)
            assert h.image_exists(IMAGE)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    for _ in range(2):  # a second wave reuses nothing of the first, whose threads are gone
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "a blocking call hung"
    assert errors == []
    assert h.ping().latency > 0

    async def from_the_loop() -> float:
        return (await h._inner.ping()).latency

    assert run(from_the_loop()) > 0
    assert h.ping().latency > 0


def test_ctrl_c_interrupts_a_blocking_host_call():
    """SIGINT during a host call (which runs on the calling thread's own runtime) raises
    KeyboardInterrupt at once; the container it waited on is untouched and the host keeps working."""
    script = f"""
import dockfleet
from dockfleet import sync
h = sync.DockerHost.connect(dockfleet.HostConfig(name="df-1", address="tcp://10.250.0.11:2375", insecure=True))
cid = h.create_container(sync.ContainerSpec(image={IMAGE!r}, command=["sleep", "60"], labels={{"dockfleet.test": "ctrl-c"}}))
h.start_container(cid)
print("waiting", flush=True)
try:
    h.wait_container(cid)
except KeyboardInterrupt:
    print("interrupted", flush=True)
print("running", h.inspect_container(cid).state.running, flush=True)
h.remove_container(cid, force=True)
"""
    assert interrupted(script) == "interrupted\nrunning True\n"


def test_an_engine_call_is_a_coroutine_any_asyncio_loop_can_drive(fleet):
    """What an engine call returns is a coroutine: `asyncio.run` takes it, errors come out of `await`,
    many run at once, it cannot be awaited twice, closing it unawaited is harmless; on a loop that
    cannot watch descriptors it runs on dockfleet's own runtime instead, cancellable there too."""
    h = fleet.host("df-1")
    call = h.ping()
    assert asyncio.iscoroutine(call)
    assert asyncio.run(call).latency > 0

    async def reused() -> None:
        c = h.ping()
        await c
        try:
            await c
            raise AssertionError("a call awaited twice")
        except RuntimeError as e:
            assert "already awaited" in str(e)

    run(reused())
    h.ping().close()  # never started

    async def together() -> list:
        return await asyncio.gather(*(h.list_containers() for _ in range(20)))

    assert len(run(together())) == 20

    async def failing() -> None:
        try:
            await h.inspect_container("dockfleet-no-such-container")
            raise AssertionError("inspect of a missing container succeeded")
        except dockfleet.NotFoundError as e:
            assert e.code == "not_found"

    run(failing())

    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, *args):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    async def elsewhere() -> None:
        assert (await h.ping()).latency > 0
        await failing()
        cid = await h.create_container(
            dockfleet.ContainerSpec(image=IMAGE, command=["sleep", "60"], labels={"dockfleet.test": unique("noreader")})
        )
        try:
            await h.start_container(cid)
            t = time.monotonic()
            try:
                await asyncio.wait_for(h.wait_container(cid), 0.2)
                raise AssertionError("the wait should have been cancelled")
            except asyncio.TimeoutError:
                pass
            assert time.monotonic() - t < 2.0
            assert (await h.inspect_container(cid)).state.running
        finally:
            await h.remove_container(cid, force=True)

    loop = NoReaders()
    try:
        loop.run_until_complete(elsewhere())
    finally:
        loop.close()


def _dockfleet_thread_switches() -> int:
    """Voluntary context switches so far of dockfleet's shared runtime threads (a thread woken to do
    a call's I/O, or to hand its result back, counts at least one)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if (task / "comm").read_text().strip() != "dockfleet":
                continue
            status = (task / "status").read_text()
        except OSError:
            continue  # a thread that just ended
        total += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return total


def test_awaited_host_calls_do_their_io_on_the_event_loops_thread(fleet):
    """An engine call awaited in a coroutine runs on a runtime of the loop's own thread, which the loop
    drives (it watches the runtime's descriptor): dockfleet's own threads are not woken; two loops in
    turn on one thread, and a loop per thread on several, all work; a request timeout (a tokio timer,
    fired by the loop's timer ticks) and a cancelled call leave the host working."""
    import threading

    address = "tcp://10.250.0.11:2375"

    async def pings(n: int, alone: bool = True) -> None:
        h = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="df-1", address=address, insecure=True))
        await h.ping()
        before = _dockfleet_thread_switches()
        for _ in range(n):
            assert (await h.ping()).latency > 0
        assert isinstance(await h.list_containers(), list)
        woken = _dockfleet_thread_switches() - before
        # (Only when no other thread is calling: their connects do run on dockfleet's threads.)
        assert not alone or woken < n // 4, f"dockfleet's threads were woken {woken} times for {n} calls"

    run(pings(200))
    run(pings(50))  # a second loop on the same thread

    errors: list[BaseException] = []

    def in_a_thread() -> None:
        try:
            asyncio.run(pings(50, alone=False))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=in_a_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads) and errors == []

    async def timeouts() -> None:
        # Only the call that must time out goes through the host with the short timeout: on a loaded
        # machine creating or starting a container can take longer than 1 s.
        h = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="df-1", address=address, insecure=True))
        short = await dockfleet.DockerHost.connect(
            dockfleet.HostConfig(name="df-1", address=address, insecure=True, request_timeout=1.0)
        )
        cid = await h.create_container(dockfleet.ContainerSpec(image=IMAGE, command=["sleep", "60"], labels={"dockfleet.test": unique("loop")}))
        try:
            await h.start_container(cid)
            try:
                await asyncio.wait_for(h.wait_container(cid), 0.2)
                raise AssertionError("the wait should have been cancelled")
            except asyncio.TimeoutError:
                pass
            # The aborted call no longer counts as pending: the loop's timer ticks stop.
            await asyncio.sleep(0.1)
            timers = [t for t in asyncio.get_running_loop()._scheduled if not t.cancelled()]  # type: ignore[attr-defined]
            assert timers == [], timers
            assert (await h.inspect_container(cid)).state.running
            # `sleep` as PID 1 ignores SIGTERM: the engine answers after the 5 s grace period, the
            # request times out after 1 s.
            t = time.monotonic()
            try:
                await short.stop_container(cid, grace=5.0)
                raise AssertionError("the stop should have timed out")
            except dockfleet.TimeoutError as e:
                assert e.code == "timeout"
            took = time.monotonic() - t
            assert 0.9 < took < 3.0, took
            assert (await short.ping()).latency > 0
        finally:
            await h.remove_container(cid, force=True)

    run(timeouts())


def test_awaited_calls_on_uvloop(fleet):
    """uvloop (libuv's loop for asyncio) drives the embedded runtime as asyncio's default loop does:
    calls do their I/O on the loop's thread without waking dockfleet's threads, errors come out of
    `await` with their code, a cancelled call leaves the host working, a request timeout fires (the
    loop's timer ticks), streams iterate; and the default loop takes over on the same thread after."""
    import uvloop

    address = "tcp://10.250.0.11:2375"

    async def calls() -> None:
        h = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="df-1", address=address, insecure=True))
        short = await dockfleet.DockerHost.connect(
            dockfleet.HostConfig(name="df-1", address=address, insecure=True, request_timeout=1.0)
        )
        await h.ping()
        before = _dockfleet_thread_switches()
        for _ in range(100):
            assert (await h.ping()).latency > 0
        woken = _dockfleet_thread_switches() - before
        assert woken < 25, f"dockfleet's threads were woken {woken} times for 100 calls"
        try:
            await h.inspect_container("dockfleet-no-such-container")
            raise AssertionError("inspect of a missing container succeeded")
        except dockfleet.NotFoundError as e:
            assert e.code == "not_found"
        label = unique("uvloop")
        cid = await h.create_container(
            dockfleet.ContainerSpec(image=IMAGE, command=["sh", "-c", "echo hello; sleep 60"], labels={"dockfleet.test": label})
        )
        try:
            await h.start_container(cid)
            listed = await h.list_containers(dockfleet.ListContainersOptions(labels=[f"dockfleet.test={label}"]))
            assert [c.id for c in listed] == [cid]
            try:
                await asyncio.wait_for(h.wait_container(cid), 0.2)
                raise AssertionError("the wait should have been cancelled")
            except asyncio.TimeoutError:
                pass
            assert (await h.inspect_container(cid)).state.running
            lines = []
            async for line in h.logs(cid, dockfleet.LogOptions(follow=False)):
                lines.append(line.message)
            assert "hello" in "".join(lines), lines
            t = time.monotonic()
            try:
                await short.stop_container(cid, grace=5.0)  # `sleep` as PID 1 ignores SIGTERM
                raise AssertionError("the stop should have timed out")
            except dockfleet.TimeoutError as e:
                assert e.code == "timeout"
            assert 0.9 < time.monotonic() - t < 3.0
        finally:
            await h.remove_container(cid, force=True)

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(calls())
    finally:
        loop.close()
    assert run(fleet.host("df-1").ping()).latency > 0
