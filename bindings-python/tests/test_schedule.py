"""The scheduler and service spec from Python (pure: no engine needed)."""

import pytest

import dockfleet


def hosts():
    return [
        dockfleet.HostState(name=f"h{i}", labels={"zone": "ab"[i % 2], "role": "manager" if i == 0 else "worker"},
                            available=True, cpus=4.0, memory_bytes=8 << 30)
        for i in range(4)
    ]


def test_spread_constraints_and_reasons():
    spec = dockfleet.ServiceSpec(name="web", image="img", replicas=6,
                                 placement=dockfleet.Placement(constraints=["role!=manager"]))
    assert spec.update_config.monitor == 5.0 and spec.stop_grace_period == 10.0, "Swarm defaults, in seconds"
    s = dockfleet.schedule(spec, hosts(), list(range(1, 7)), dockfleet.ScheduleOptions(seed=3))
    per_host = {}
    for a in s.assignments:
        per_host[a.host] = per_host.get(a.host, 0) + 1
    assert per_host == {"h1": 2, "h2": 2, "h3": 2}
    assert "role!=manager" in s.reasons["h0"]
    assert s == dockfleet.schedule(spec, hosts(), list(range(1, 7)), dockfleet.ScheduleOptions(seed=3))


def test_published_port_in_use_leaves_a_slot_unplaced_with_reasons():
    hs = hosts()
    hs[1].used_ports = {"8080/tcp"}
    spec = dockfleet.ServiceSpec(name="web", image="img", ports=[dockfleet.ServicePort(target=80, published=8080)])
    s = dockfleet.schedule(spec, hs, [1, 2, 3, 4])
    assert len(s.assignments) == 3 and s.unplaced == [4]
    assert "8080/tcp" in s.reasons["h1"] and len(s.reasons) == 4


def test_node_runs_places_by_where_another_service_runs():
    hs = hosts()
    hs[2].services = {"shop_db"}
    spec = dockfleet.ServiceSpec(name="shop_web", image="img", placement=dockfleet.Placement(constraints=["node.runs==shop_db"]))
    s = dockfleet.schedule(spec, hs, [1, 2])
    assert [a.host for a in s.assignments] == ["h2", "h2"] and "no task of shop_db" in s.reasons["h0"]
    spec.placement = dockfleet.Placement(constraints=["node.runs!=shop_db"])
    assert "h2" not in [a.host for a in dockfleet.schedule(spec, hs, [1, 2, 3]).assignments]


def test_invalid_spec_names_the_field():
    spec = dockfleet.ServiceSpec(name="web", image="img",
                                 volumes=[dockfleet.Mount(source="/var/run/docker.sock", target="/s")])
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        dockfleet.schedule(spec, hosts(), [1])
    assert "volumes[0].source" in str(e.value)


def test_a_replica_count_over_the_limit_is_refused_before_any_placement():
    spec = dockfleet.ServiceSpec(name="web", image="img", replicas=100_000_000)
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        dockfleet.schedule(spec, hosts(), [1])
    assert "replicas" in str(e.value) and "limit of 1000000" in str(e.value)
