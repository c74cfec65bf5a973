"""Deploying a service from Python onto the testbed's engines."""

import dockfleet
from dockfleet import sync
from conftest import IMAGE, TESTBED, run, unique


def plain_fleet(module):
    full = module.Fleet.from_file(TESTBED / "fleet.toml")
    f = module.Fleet()
    for h in full.hosts():
        if h.name != "df-tls":
            f.add(h)
    return f


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
