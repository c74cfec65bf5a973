"""Bad input and faults from Python: the right exception class, `.code`, the cause chain, nothing left behind."""

import gc

import pytest

import dockfleet
from dockfleet import sync
from conftest import IMAGE, cert, run, run_testbed, unique


def test_every_code_has_a_class():
    for code in dockfleet.ERROR_CODES:
        cls = getattr(dockfleet, "".join(p.capitalize() for p in code.split("_")) + "Error")
        assert issubclass(cls, dockfleet.DockfleetError)


def test_malformed_addresses_and_insecure_tcp():
    for addr, cls, code in [
        ("10.250.0.11:2375", dockfleet.InvalidAddressError, "invalid_address"),
        ("tcp://10.250.0.11:x", dockfleet.InvalidAddressError, "invalid_address"),
        ("tcp://10.250.0.11:2375", dockfleet.InsecureError, "insecure"),
    ]:
        with pytest.raises(cls) as e:
            dockfleet.DockerHost(dockfleet.HostConfig(name="bad", address=addr))
        assert e.value.code == code and "address" in str(e.value)


def test_bad_field_types_name_the_field():
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        dockfleet.ContainerSpec(image=IMAGE, cpus="lots")
    assert "ContainerSpec.cpus" in str(e.value) and e.value.code == "invalid_argument"
    with pytest.raises(TypeError):
        dockfleet.ContainerSpec(imag=IMAGE)


def test_bad_numbers_are_refused_naming_the_field():
    # Durations were clamped (-1 s became 0) or became "forever" (inf, nan); ints were always checked.
    for cls, kw, field in [
        (dockfleet.ServicePort, dict(target=70000), "ServicePort.target"),
        (dockfleet.ServiceSpec, dict(replicas=-1), "ServiceSpec.replicas"),
        (dockfleet.ServiceSpec, dict(replicas=1.5), "ServiceSpec.replicas"),
        (dockfleet.Resources, dict(memory_limit=-1), "Resources.memory_limit"),
        (dockfleet.ServiceSpec, dict(stop_grace_period=-1), "ServiceSpec.stop_grace_period"),
        (dockfleet.ServiceSpec, dict(stop_grace_period=float("nan")), "ServiceSpec.stop_grace_period"),
        (dockfleet.UpdateConfig, dict(delay=float("inf")), "UpdateConfig.delay"),
        (dockfleet.BalancerOptions, dict(fail_window=-5.0), "BalancerOptions.fail_window"),
        (dockfleet.HostConfig, dict(request_timeout=float("inf")), "HostConfig.request_timeout"),
        (dockfleet.ProbeOptions, dict(timeout=1e300), "ProbeOptions.timeout"),
    ]:
        with pytest.raises(dockfleet.InvalidArgumentError) as e:
            cls(**kw)
        assert e.value.code == "invalid_argument" and field in str(e.value), str(e.value)
    b = dockfleet.Balancer()
    b.set_endpoints([dockfleet.Endpoint(id="a", address="127.0.0.1", port=80)])
    with pytest.raises(dockfleet.InvalidArgumentError, match="latency"):
        b.release("a", True, -1.0)
    assert [s.requests for s in b.stats()] == [0], "the refused call changed nothing"
    spec = dockfleet.ServiceSpec(name="web", image="img")
    # Assigning to an attribute is checked as the constructor checks (pyo3's own setters raised a bare
    # ValueError or OverflowError with no code), and a refused value leaves the field as it was.
    for field, value in [("stop_grace_period", float("inf")), ("replicas", -1), ("replicas", "3"), ("ports", [80])]:
        with pytest.raises(dockfleet.InvalidArgumentError) as e:
            setattr(spec, field, value)
        assert e.value.code == "invalid_argument" and f"ServiceSpec.{field}" in str(e.value), str(e.value)
    assert (spec.stop_grace_period, spec.replicas, spec.ports) == (dockfleet.ServiceSpec().stop_grace_period, 1, [])
    spec.replicas, spec.stop_grace_period = 3, 2.5
    assert (spec.replicas, spec.stop_grace_period) == (3, 2.5)
    with pytest.raises(AttributeError, match="'ServiceSpec' object has no attribute 'replica'"):
        spec.replica = 3
    # Count arguments out of range name themselves (pyo3 alone raised a bare OverflowError).
    for call, name in [
        (lambda: dockfleet.task_container(spec, -1), "slot"),
        (lambda: dockfleet.schedule(spec, [], [0, 2**32]), "slots"),
    ]:
        with pytest.raises(dockfleet.InvalidArgumentError, match=f"invalid {name}: "):
            call()
    with pytest.raises(TypeError, match="slot"):
        dockfleet.task_container(spec, 1.5)
    # The edges are accepted and come back as they went in.
    edge = dockfleet.ServiceSpec(name="web", image="img", stop_grace_period=0.0, shutdown_delay=1e9)
    assert (edge.stop_grace_period, edge.shutdown_delay) == (0.0, 1e9)
    assert dockfleet.task_container(edge, 0).stop_timeout == 0


def test_a_bad_duration_on_an_engine_call_stops_nothing(fleet):
    h = fleet.host("df-1")
    tag = unique("dur")

    async def go():
        cid = await h.create_container(dockfleet.ContainerSpec(image=IMAGE, command=["sleep", "30"], labels={"dockfleet.test": tag}))
        try:
            await h.start_container(cid)
            with pytest.raises(dockfleet.InvalidArgumentError, match="grace"):
                await h.stop_container(cid, -1.0)
            assert (await h.inspect_container(cid)).state.running
        finally:
            await h.remove_container(cid, force=True)

    run(go())


def test_invalid_specs_and_missing_images_create_nothing(fleet):
    h = fleet.host("df-1")
    tag = unique("bad")

    async def go():
        with pytest.raises(dockfleet.NotFoundError) as e:
            await h.create_container(dockfleet.ContainerSpec(image="dockfleet/nope:never", labels={"dockfleet.test": tag}))
        assert e.value.code == "not_found"
        with pytest.raises(dockfleet.InvalidArgumentError) as e:
            await h.create_container(
                dockfleet.ContainerSpec(image=IMAGE, ports=[dockfleet.PortMapping(container_port=0)], labels={"dockfleet.test": tag})
            )
        assert "ports[0].container_port" in str(e.value)
        opts = dockfleet.ListContainersOptions(all=True, labels=[f"dockfleet.test={tag}"])
        assert await h.list_containers(opts) == []

    run(go())


def test_references_that_would_address_another_object_are_refused(fleet):
    # Unescaped in the engine URL's path, `../containers/NAME` as an image was `DELETE /containers/NAME`.
    h = fleet.host("df-1")
    tag = unique("ref")

    async def go():
        cid = await h.create_container(dockfleet.ContainerSpec(image=IMAGE, name=tag, labels={"dockfleet.test": tag}))
        try:
            with pytest.raises(dockfleet.InvalidArgumentError, match="reference") as e:
                await h.remove_image(f"../containers/{tag}", force=True)
            assert e.value.code == "invalid_argument"
            for bad in [f"{tag}?force=1", f"../containers/{tag}", ""]:
                with pytest.raises(dockfleet.InvalidArgumentError, match="invalid id"):
                    await h.remove_container(bad, force=True)
                with pytest.raises(dockfleet.InvalidArgumentError):
                    await h.inspect_container(bad)
            with pytest.raises(dockfleet.InvalidArgumentError, match="reference"):
                await h.image_exists("a/../b")
            assert (await h.inspect_container(tag)).id == cid
        finally:
            await h.remove_container(cid, force=True)

    run(go())


def test_tls_faults(fleet):
    def tls_host(ca, crt, key, address="tcp://10.250.0.60:2376"):
        return dockfleet.DockerHost(
            dockfleet.HostConfig(name="t", address=address, tls=dockfleet.TlsConfig(ca=cert(ca), cert=cert(crt), key=cert(key)))
        )

    async def go():
        await tls_host("ca.pem", "client-cert.pem", "client-key.pem").ping()
        for h in [
            tls_host("other-ca.pem", "client-cert.pem", "client-key.pem"),
            tls_host("ca.pem", "other-client-cert.pem", "other-client-key.pem"),
            dockfleet.DockerHost(dockfleet.HostConfig(name="plain", address="tcp://10.250.0.60:2376", insecure=True)),
        ]:
            with pytest.raises(dockfleet.TlsError) as e:
                await h.ping()
            assert e.value.code == "tls"

    run(go())


def test_engine_stopped_has_code_and_cause(fleet):
    h = fleet.host("df-3")
    run(h.ping())
    run_testbed("stop-engine", "df-3")
    try:
        with pytest.raises(dockfleet.EngineUnreachableError) as e:
            run(h.ping())
        assert e.value.code == "engine_unreachable" and "df-3" in str(e.value)
        assert e.value.__cause__ is not None, "the cause chain is kept"
    finally:
        run_testbed("start-engine", "df-3")
    run(h.ping())


def test_connect_timeout_is_a_timeout_error():
    # An address on the testbed bridge that no namespace holds: the connect never completes.
    config = dockfleet.HostConfig(name="void", address="tcp://10.250.0.99:2375", insecure=True, connect_timeout=0.3)
    h = dockfleet.DockerHost(config)
    with pytest.raises(dockfleet.TimeoutError) as e:
        run(h.ping())
    assert e.value.code == "timeout" and "void" in str(e.value) and "300ms" in str(e.value)
    with pytest.raises(dockfleet.TimeoutError):
        sync.DockerHost(config).ping()


def test_panic_is_an_exception_not_an_abort():
    with pytest.raises(dockfleet.InternalError) as e:
        run(dockfleet._native._panic_for_tests("py-test panic"))
    assert e.value.code == "internal" and "py-test panic" in str(e.value)
    gc.collect()
    # The interpreter and the runtime are still fine.
    assert run(_still_works()) is True


def test_panic_in_a_synchronous_call_is_internal_error_not_panic_exception():
    # pyo3 alone raises its PanicException, a BaseException with no .code that `except Exception` misses.
    try:
        dockfleet._native._panic_now_for_tests("py-sync panic")
    except Exception as e:
        assert isinstance(e, dockfleet.InternalError) and e.code == "internal" and "py-sync panic" in str(e)
    else:
        raise AssertionError("no error")
    # The next synchronous call works.
    assert len(dockfleet.spec_hash(dockfleet.ServiceSpec(name="web", image="x"))) > 0


async def _still_works():
    h = await dockfleet.DockerHost.connect(dockfleet.HostConfig(name="u", address="unix:///run/dockfleet-testbed/df-1.sock"))
    return (await h.ping()).latency > 0


EXIT_SCRIPT = """
import asyncio, dockfleet
from dockfleet import sync
cfg = dockfleet.HostConfig(name="x", address="tcp://10.250.0.11:2375", insecure=True)
async def main():
    h = await dockfleet.DockerHost.connect(cfg)
    for _ in range(300):
        await h.ping()
    events = h.events()          # left open on purpose
    await asyncio.wait_for(asyncio.shield(asyncio.sleep(0.01)), 1)
    return events
kept = asyncio.run(main())
s = sync.DockerHost.connect(cfg)
for _ in range(100):
    s.ping()
print("done")
"""


def test_the_interpreter_exits_cleanly_with_work_in_flight():
    import subprocess
    import sys

    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "done"
