"""Load-balancing strategies from Python (pure logic: no engine)."""

import dockfleet
from dockfleet import sync


def endpoints(n):
    return [dockfleet.Endpoint(id=f"e{i}", address="10.0.0.1", port=8000 + i) for i in range(n)]


def test_strategies_and_ejection():
    rr = dockfleet.Balancer(dockfleet.BalancerOptions(strategy="round-robin"))
    rr.set_endpoints(endpoints(3))
    assert [rr.pick().id for _ in range(4)] == ["e0", "e1", "e2", "e0"]
    w = sync.Balancer(sync.BalancerOptions(strategy="weighted"))
    w.set_endpoints([dockfleet.Endpoint(id="a", address="x", port=1, weight=5), dockfleet.Endpoint(id="b", address="x", port=2)])
    assert [w.pick().id for _ in range(6)].count("a") == 5
    ch = dockfleet.Balancer(dockfleet.BalancerOptions(strategy="consistent-hash"))
    ch.set_endpoints(endpoints(4))
    assert len({ch.pick("10.1.2.3").id for _ in range(5)}) == 1, "a key sticks to one endpoint"
    ej = dockfleet.Balancer(dockfleet.BalancerOptions(max_fails=2, fail_window=10.0, ejection=60.0))
    ej.set_endpoints(endpoints(2))
    for _ in range(2):
        ej.release("e0", False, 0.01)
    assert {ej.pick().id for _ in range(4)} == {"e1"}
    stats = {s.endpoint.id: s for s in ej.stats()}
    assert stats["e0"].ejected and stats["e0"].failures == 2 and stats["e1"].in_flight == 4
    assert dockfleet.Balancer().pick() is None
    try:
        dockfleet.Balancer(dockfleet.BalancerOptions(strategy="fastest"))
        raise AssertionError("an unknown strategy was accepted")
    except dockfleet.InvalidArgumentError as e:
        assert e.code == "invalid_argument" and "strategy" in str(e)


def test_an_ejection_as_long_as_a_float_allows_ejects_without_a_panic():
    # 1e19 s is past the clock's range: `Instant + Duration` panicked, a PanicException in Python.
    b = dockfleet.Balancer(dockfleet.BalancerOptions(max_fails=1, fail_window=1e19, ejection=1e19))
    b.set_endpoints(endpoints(2))
    b.release("e0", False, 0.01)
    assert {b.pick().id for _ in range(4)} == {"e1"}
    assert {s.endpoint.id: s.ejected for s in b.stats()} == {"e0": True, "e1": False}
