"""A forked child (`os.fork`, `multiprocessing`'s "fork" start method) uses hosts its parent made: with
runtimes and connections of its own, while the parent goes on with its own. The child inherits the
parent's pooled connections and its runtimes' epoll instances (the same kernel objects, not copies):
used from both sides, the child read answers meant for the parent (`Failed to deserialize JSON`) and
both sides waited for answers the other one took, until their timeouts."""

import asyncio
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
import warnings

import dockfleet
from dockfleet import sync

from conftest import IMAGE, unique

ADDRESS = "tcp://10.250.0.11:2375"
# Short timeouts: a call that waits for an answer the other process took fails within seconds.
CONFIG = dockfleet.HostConfig(name="df-1", address=ADDRESS, insecure=True, request_timeout=5, connect_timeout=2)


def work(h: sync.DockerHost, cid: str) -> None:
    """Every kind of call a process makes: blocking and awaited requests, and a stream."""
    for _ in range(50):
        assert h.ping().latency > 0
        assert h.inspect_container(cid).id == cid
        assert h.info().name
        assert any(c.id == cid for c in h.list_containers(dockfleet.ListContainersOptions(all=True)))
    assert "".join(line.message for line in h.logs(cid)).strip() == "forked"

    async def awaited() -> None:
        a = await dockfleet.DockerHost.connect(CONFIG)
        for _ in range(50):
            assert (await a.ping()).latency > 0
            assert (await a.inspect_container(cid)).id == cid

    asyncio.run(awaited())


def test_forked_children_make_calls_beside_their_parent() -> None:
    h = sync.DockerHost.connect(CONFIG)
    cid = h.create_container(dockfleet.ContainerSpec(image=IMAGE, command=["echo", "forked"], labels={"dockfleet.test": unique("fork")}))
    try:
        h.start_container(cid)
        h.wait_container(cid)
        work(h, cid)  # the parent's runtimes and pools exist before it forks
        children = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a multi-threaded process
            for _ in range(3):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    try:
                        work(h, cid)
                        os.write(w, b"ok")
                    except BaseException as e:  # noqa: BLE001 - reported to the parent
                        os.write(w, f"{type(e).__name__}: {e}".encode())
                    finally:
                        os._exit(0)
                os.close(w)
                children.append((pid, r))
        work(h, cid)  # the parent, meanwhile
        deadline = time.monotonic() + 120
        outcomes = []
        for pid, r in children:
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.05)
            outcomes.append(os.read(r, 4096).decode() or "killed: still running after 120 s")
            os.close(r)
        assert outcomes == ["ok"] * 3
        work(h, cid)  # and after them
    finally:
        h.remove_container(cid, force=True)


# Made in the parent, used by the pool's forked workers: the way a script fans out over processes.
POOL_HOST: sync.DockerHost | None = None


def ping_in_worker(_: int) -> tuple[int, str]:
    assert POOL_HOST is not None
    return os.getpid(), POOL_HOST.info().name


def test_a_fork_pool_uses_a_host_its_parent_made() -> None:
    global POOL_HOST
    POOL_HOST = sync.DockerHost.connect(CONFIG)
    name = POOL_HOST.info().name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(ping_in_worker, range(20), chunksize=1)
    assert {n for _, n in results} == {name}
    assert os.getpid() not in {p for p, _ in results}
    assert POOL_HOST.info().name == name


# A process that forks a child that exits normally (atexit handlers, thread-local destructors), then
# goes on with the connection and the stream it had before. The child's exit dropped or shut down the
# runtimes it inherited, which unregistered the parent's sockets from the epoll instances both share:
# the parent's next call on its pooled connection, and its stream, then waited forever.
EXIT_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import dockfleet
    from dockfleet import sync

    label, image = sys.argv[1], sys.argv[2]
    config = dockfleet.HostConfig(name="df-1", address="%s", insecure=True, request_timeout=5, connect_timeout=2)
    h = sync.DockerHost.connect(config)
    h.ping()  # a pooled connection on this thread's runtime
    events = h.events(dockfleet.EventOptions(filters={"label": [label]}))  # a stream, waiting
    # One child makes calls of its own; the other does not touch dockfleet (what it inherited is
    # still there when it exits).
    for uses_dockfleet in (True, False):
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            signal.alarm(60)  # a child that hangs does not outlive the test
            if uses_dockfleet:
                assert h.ping().latency > 0
                try:
                    next(events)
                    raise AssertionError("a stream of the parent's gave an item in the child")
                except dockfleet.InvalidArgumentError as e:
                    assert "forked" in str(e), e
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0, f"child: {status}"
        # Shutting down the runtime it inherited waited 2 s for threads that exist only in the parent.
        took = time.monotonic() - started
        assert took < 1.5, f"the child took {took:.1f} s to exit"
    for _ in range(20):
        assert h.ping().latency > 0
    cid = h.create_container(dockfleet.ContainerSpec(image=image, labels={label: "1"}))
    try:
        event = next(events)
        assert event.action == "create" and event.id == cid, event
    finally:
        h.remove_container(cid, force=True)
    print("parent ok")
""" % ADDRESS)


def test_a_child_that_exits_normally_leaves_its_parent_working() -> None:
    label = unique("fork-exit")
    out = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", EXIT_SCRIPT, label, IMAGE],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0 and "parent ok" in out.stdout, out.stdout + out.stderr


# What runs in the background stays with the process that started it: in a forked child, an etcd
# Discovery and a Proxy of the parent's say so at once (they waited forever, or for the whole timeout),
# a new Discovery works, and the child's exit leaves the parent's lease, registrations and proxy alone.
BACKGROUND_SCRIPT = textwrap.dedent("""
    import os, signal, socket, sys, time
    import dockfleet
    from dockfleet import sync

    prefix = sys.argv[1]
    config = dockfleet.EtcdConfig(endpoints=["http://127.0.0.1:23790"], prefix=prefix, request_timeout=3)
    d = sync.Discovery.etcd(config)
    d.register(dockfleet.Instance(service="api", id="a1", address="127.0.0.1", port=1, ttl=2.0))
    local = sync.Discovery.embedded()
    local.register(dockfleet.Instance(service="web", id="w1", address="127.0.0.1", port=9))
    proxy = sync.Proxy.start(local, dockfleet.ProxyOptions(listen="127.0.0.1:0", routes=[dockfleet.Route(service="web")]))
    proxy.wait_ready(5.0)
    pid = os.fork()
    if pid == 0:
        signal.alarm(60)  # a child that hangs does not outlive the test
        for call in (d.services, lambda: proxy.wait_ready(1.0)):
            try:
                call()
                raise AssertionError("the parent's discovery or proxy answered in the child")
            except dockfleet.InvalidArgumentError as e:
                assert "forked" in str(e), e
        proxy.shutdown(0.1)  # not the child's to stop: returns at once
        assert sync.Discovery.etcd(config).services() == ["api"]
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0, f"child: {status}"
    time.sleep(3)  # past the lease's TTL: the parent keeps it alive
    assert [i.id for i in d.lookup("api")] == ["a1"]
    socket.create_connection(("127.0.0.1", proxy.port()), timeout=2).close()
    proxy.wait_ready(1.0)
    proxy.shutdown(1.0)
    print("parent ok")
""")


def test_a_child_leaves_its_parents_discovery_and_proxy_alone() -> None:
    out = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", BACKGROUND_SCRIPT, "/" + unique("fork-bg")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0 and "parent ok" in out.stdout, out.stdout + out.stderr
