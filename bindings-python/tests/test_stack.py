"""Compose stacks from Python, and the network and volume calls they use."""

import asyncio

import pytest

import dockfleet
from dockfleet import sync
from conftest import TESTBED, plain_fleet, run, unique

COMPOSE = """
services:
  api:
    image: dockfleet/busybox:latest
    command: sh -c 'sleep 0.5; touch /tmp/up; exec sleep 600'
    stop_grace_period: 1s
    healthcheck: {test: test -f /tmp/up, interval: 200ms, retries: 20}
  web:
    image: dockfleet/busybox:latest
    command: [sleep, "600"]
    stop_grace_period: 1s
    depends_on: {api: {condition: service_healthy}}
    deploy: {replicas: 2}
    volumes: [cache:/cache]
volumes:
  cache:
"""



def test_stack_up_ps_down():
    fleet = plain_fleet(dockfleet)
    name = unique("pystack")
    stack = dockfleet.parse_compose(name, COMPOSE)
    assert [s.name for s in stack.services] == ["api", "web"]
    assert stack.services[1].depends_on == [dockfleet.Dependency(service="api", condition="service_healthy")]

    async def go():
        events = [e async for e in dockfleet.stack_up(fleet, stack)]
        steps = [(e.service, e.kind) for e in events if e.kind in ("started", "waiting", "completed")]
        assert steps.index((f"{name}_api", "started")) < steps.index((name, "waiting")) < steps.index((f"{name}_web", "started"))
        assert steps[-1] == (name, "completed")
        ps = {s.name: s for s in await dockfleet.stack_ps(fleet, name)}
        assert (ps[f"{name}_api"].running, ps[f"{name}_web"].running, ps[f"{name}_web"].desired) == (1, 2, 2)
        down = await dockfleet.stack_down(fleet, name, remove_volumes=True)
        assert down.containers == 3 and sorted(down.services) == [f"{name}_api", f"{name}_web"]
        assert down.networks == 3 and down.volumes == 3
        assert await dockfleet.stack_ps(fleet, name) == []

    run(go())


def test_bad_compose_names_the_field():
    for text, field in [
        ("services:\n  web: {image: x, deploy: {replicas: lots}}\n", "services.web.deploy.replicas"),
        ("services:\n  web: {image: x, volumes: ['/:/h']}\n", "services.web.volumes[0].source"),
        ("services:\n  web: {image: x, ipc: host}\n", "services.web"),
        ("services:\n  web: {image: x, working_dir: srv}\n", "services.web.working_dir"),
        ("services:\n  web: {image: x, entrypoint: []}\n", "services.web.entrypoint"),
        ("services:\n  web: {image: x, network_mode: host, ports: ['8080:9100']}\n", "services.web.ports[0].published"),
        ("services:\n  web: {image: x, network_mode: 'service:db'}\n  db: {image: x}\n", "services.web.network_mode"),
        ("services:\n  web: {image: x, pull_policy: daily}\n", "services.web.pull_policy"),
    ]:
        try:
            sync.parse_compose("bad", text)
            raise AssertionError(f"accepted: {text}")
        except sync.InvalidArgumentError as e:
            assert e.code == "invalid_argument" and field in str(e), str(e)


def test_include_and_dot_env(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / ".env").write_text("TAG=2.1\n")
    (tmp_path / "db" / ".env").write_text("DB_IMAGE=\"db:${TAG}\"\n")
    (tmp_path / "db" / "compose.yaml").write_text("services:\n  db: {image: '${DB_IMAGE}', build: ./ctx}\n")
    main = tmp_path / "compose.yaml"
    main.write_text("include: [db/compose.yaml]\nservices:\n  web: {image: 'web:${TAG}', depends_on: [db]}\n")
    stack = sync.load_compose("inc", str(main))
    by = {s.name: s for s in stack.services}
    assert (by["web"].spec.image, by["db"].spec.image) == ("web:2.1", "db:2.1")
    assert by["db"].build.context == tmp_path / "db" / "ctx"
    (tmp_path / "prod.yaml").write_text("services:\n  web: {image: 'web:prod', deploy: {replicas: 3}}\n")
    merged = sync.load_compose_files("inc", [main, str(tmp_path / "prod.yaml")])
    web = next(s for s in merged.services if s.name == "web")
    assert (web.spec.image, web.spec.replicas, web.depends_on[0].service) == ("web:prod", 3, "db")
    main.write_text("include: [db/compose.yaml]\nservices:\n  db: {image: other}\n")
    try:
        sync.load_compose("inc", str(main))
        raise AssertionError("a service two files define was accepted")
    except sync.InvalidArgumentError as e:
        assert e.code == "invalid_argument" and "include[0].services.db" in str(e), str(e)


def test_entrypoint_working_dir_user_and_stop_signal_from_compose():
    text = "services:\n  web:\n    image: x\n    entrypoint: /bin/sh -c\n    command: [echo hi]\n    working_dir: /srv\n    user: '65534'\n    stop_signal: SIGQUIT\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert (spec.entrypoint, spec.command, spec.working_dir, spec.user) == (["/bin/sh", "-c"], ["echo hi"], "/srv", "65534")
    assert spec.stop_signal == "SIGQUIT"
    agent = sync.parse_compose("app", "services:\n  a: {image: x, pid: host, x-dockfleet: {allow_privileged: true}}\n").services[0].spec
    assert (agent.pid, dockfleet.task_container(agent, 1).pid, spec.pid) == ("host", "host", None)
    assert_refused(dockfleet.ServiceSpec(name="x", image="x", pid="host"), "pid")
    console = sync.parse_compose("app", "services:\n  web: {image: x, tty: true, stdin_open: true}\n").services[0].spec
    c = dockfleet.task_container(console, 1)
    assert (console.tty, console.stdin_open, c.tty, c.stdin_open, spec.tty) == (True, True, True, True, False)
    assert dockfleet.ServiceSpec(name="web", image="x").entrypoint is None


def test_container_name_and_links_from_compose():
    text = "services:\n  web: {image: x, links: ['db:database']}\n  db: {image: x, container_name: shop-db}\n"
    by = {s.name: s for s in sync.parse_compose("shop", text).services}
    assert by["db"].spec.network_aliases == ["db", "shop-db", "database"]
    assert by["web"].depends_on == [dockfleet.Dependency(service="db")]
    try:
        sync.parse_compose("shop", "services:\n  web: {image: x, container_name: w, scale: 2}\n")
        raise AssertionError("a container_name with two replicas was accepted")
    except sync.InvalidArgumentError as e:
        assert e.code == "invalid_argument" and "services.web.container_name" in str(e), str(e)


def test_network_mode_host_from_compose():
    text = "services:\n  agent: {image: x, network_mode: host, ports: ['9100:9100']}\n"
    spec = sync.parse_compose("mon", text).services[0].spec
    assert (spec.networks, spec.network_aliases, spec.ports[0].target) == (["host"], [], 9100)


def test_an_abandoned_stack_up_removes_the_networks_it_created(tmp_path):
    fleet = plain_fleet(dockfleet)
    name = unique("pyabandon")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM dockfleet/busybox:latest\nRUN sleep 20\n")
    text = "services:\n  app: {build: ./app, networks: [back]}\nnetworks:\n  back: {}\n"
    stack = dockfleet.parse_compose(name, text, tmp_path)
    label = [f"com.docker.stack.namespace={name}"]

    async def networks():
        return sum([len(await fleet.host(h).list_networks(label)) for h in ("df-1", "df-2", "df-3")])

    async def go():
        up = dockfleet.stack_up(fleet, stack)
        async for e in up:
            if e.kind == "build":
                break
        assert await networks() == 3
        await up.aclose()
        for _ in range(200):
            if await networks() == 0:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the networks of the abandoned stack_up stayed")

    run(go())


def test_sync_networks_and_volumes():
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    name = unique("pynet")
    labels = {"dockfleet.test": name}
    pool = dockfleet.IpamPool(subnet="10.78.91.0/24", gateway="10.78.91.254", aux_addresses={"router": "10.78.91.2"})
    options = dockfleet.NetworkOptions(labels=labels, internal=True, driver_opts={"com.docker.network.driver.mtu": "1400"}, ipam=[pool])
    net_id = host.create_network(name, options)
    [net] = host.list_networks([f"dockfleet.test={name}"])
    assert (net.id, net.driver, net.internal, net.attachable) == (net_id, "bridge", True, False)
    assert net.driver_opts == {"com.docker.network.driver.mtu": "1400"}
    assert (net.ipam[0].subnet, net.ipam[0].gateway, net.ipam[0].aux_addresses) == ("10.78.91.0/24", "10.78.91.254", {"router": "10.78.91.2"})
    try:
        host.create_network(name, dockfleet.NetworkOptions(labels=labels))
        raise AssertionError("a second network of the same name was created")
    except sync.ConflictError:
        pass
    host.remove_network(name)
    # Bad options are refused by field before any engine call.
    bad = dockfleet.NetworkOptions(labels=labels, ipam=[dockfleet.IpamPool(subnet="10.78.91.0/24", gateway="10.0.0.1")])
    try:
        host.create_network(name, bad)
        raise AssertionError("a gateway outside the subnet was accepted")
    except sync.InvalidArgumentError as e:
        assert e.code == "invalid_argument" and "options.ipam[0].gateway" in str(e), str(e)
    assert host.list_networks([f"dockfleet.test={name}"]) == []
    tmpfs = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    vol = host.create_volume(name, dockfleet.VolumeOptions(labels=labels, driver_opts=tmpfs))
    assert (vol.name, vol.driver, vol.labels, vol.driver_opts) == (name, "local", labels, tmpfs)
    assert [v.name for v in host.list_volumes([f"dockfleet.test={name}"])] == [name]
    host.remove_volume(name)
    try:
        host.create_volume(name, dockfleet.VolumeOptions(driver_opts={"uid": "1000"}))
        raise AssertionError("an option the local driver lacks was accepted")
    except sync.InvalidArgumentError as e:
        assert "options.driver_opts.uid" in str(e), str(e)
    assert host.list_volumes([f"dockfleet.test={name}"]) == []
    plain = host.create_volume(name)
    assert (plain.driver, plain.driver_opts) == ("local", {})
    host.remove_volume(name)


def test_a_container_joins_further_networks_and_answers_to_its_aliases_there():
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    name = unique("pyalias")
    front, back = f"{name}-front", f"{name}-back"
    for n in (front, back):
        host.create_network(n, dockfleet.NetworkOptions(labels={"dockfleet.test": name}))
    ids = []
    try:
        server = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["sleep", "600"], network=front, extra_networks=[back], network_aliases=["db"])
        client = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["sleep", "600"], network=back)
        for spec in (server, client):
            ids.append(host.create_container(spec))
            host.start_container(ids[-1])
        d = host.inspect_container(ids[0])
        assert sorted(d.networks) == sorted([front, back]) and d.privileged is False
        out = host.exec(ids[1], ["nslookup", "db"])
        assert d.networks[back] in out.stdout, out
    finally:
        for i in ids:
            host.remove_container(i, force=True)
        for n in (front, back):
            host.remove_network(n)
    try:
        host.create_container(dockfleet.ContainerSpec(image="x", network_aliases=["db"]))
        raise AssertionError("an alias without a user-defined network was accepted")
    except sync.InvalidArgumentError as e:
        assert "network_aliases[0]" in str(e), str(e)


def test_compose_services_join_all_their_networks_and_answer_to_their_names():
    text = "services:\n  web: {image: x, networks: [a, b]}\nnetworks: {a: {}, b: {}}\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert (spec.networks, spec.network_aliases) == (["app_a", "app_b"], ["web"])
    text = "services:\n  web: {image: x, expose: [3000], networks: {a: {aliases: [api]}}}\nnetworks: {a: {}}\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert spec.network_aliases == ["web", "api"]
    assert [(p.target, p.published) for p in spec.ports] == [(3000, None)]
    assert sync.parse_compose("app", "services:\n  web: {image: x, deploy: {endpoint_mode: dnsrr}}\n").services[0].spec.endpoint_mode == "dnsrr"
    labelled = sync.parse_compose("app", "services:\n  web: {image: x, networks: [a]}\nnetworks: {a: {labels: {tier: net}, internal: true, ipam: {config: [{subnet: 10.9.0.0/24}]}}}\nvolumes: {v: {labels: [tier=data], driver_opts: {type: tmpfs, device: tmpfs}}}\n")
    files = sync.parse_compose("app", "secrets: {token: {environment: APP_TOKEN}}\nconfigs: {motd: {content: hi, labels: {tier: conf}}}\nservices:\n  web: {image: x, secrets: [token], configs: [motd]}\n")
    assert [(f.name, f.file, f.environment, f.content) for f in files.secrets + files.configs] == [("app_token", None, "APP_TOKEN", None), ("app_motd", None, None, "hi")]
    assert files.configs[0].labels == {"tier": "conf"}
    try:
        sync.parse_compose("app", "secrets: {token: {content: hi}}\nservices:\n  web: {image: x}\n")
        raise AssertionError("a secret given inline was accepted")
    except sync.InvalidArgumentError as e:
        assert "secrets.token.content" in str(e), str(e)
    net, vol = labelled.network_options["app_a"], labelled.volume_options["app_v"]
    assert (net.labels, net.internal, [p.subnet for p in net.ipam]) == ({"tier": "net"}, True, ["10.9.0.0/24"])
    assert (vol.labels, vol.driver_opts) == ({"tier": "data"}, {"type": "tmpfs", "device": "tmpfs"})
    ports = sync.parse_compose("app", "services:\n  web: {image: x, ports: [{target: 80, published: 8080, mode: ingress, name: web}]}\n").services[0].spec.ports
    assert [(p.target, p.published, p.mode) for p in ports] == [(80, 8080, "ingress")]
    try:
        sync.parse_compose("app", "services:\n  web: {image: x, deploy: {endpoint_mode: rr}}\n")
        raise AssertionError("endpoint_mode rr was accepted")
    except sync.InvalidArgumentError as e:
        assert "services.web.deploy.endpoint_mode" in str(e), str(e)


def test_hostname_extra_hosts_init_read_only_and_capabilities():
    text = "services:\n  web:\n    image: x\n    hostname: web-{{.Task.Slot}}\n    extra_hosts: [a=10.0.0.1]\n    init: true\n    read_only: true\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert (spec.hostname, spec.extra_hosts, spec.init, spec.read_only, spec.cap_add, spec.cap_drop) == ("web-{{.Task.Slot}}", ["a:10.0.0.1"], True, True, ["NET_ADMIN"], ["ALL"])
    assert dockfleet.task_container(spec, 3).hostname == "web-3"
    spec.env = {"SLOT": "{{ .Task.Slot }} of {{.Service.Name}}"}
    assert dockfleet.task_container(spec, 3).env == {"SLOT": "3 of app_web"}
    for bad, field in [(dict(cap_add=["SYS_ADMIN"]), "cap_add[0]"), (dict(hostname="{{.Node.ID}}"), "hostname"), (dict(extra_hosts=["a"]), "extra_hosts[0]")]:
        try:
            list(sync.rollout(plain_fleet(sync), dockfleet.ServiceSpec(name="x", image="x", **bad)))
            raise AssertionError(f"{bad} was accepted")
        except sync.InvalidArgumentError as e:
            assert field in str(e), str(e)
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    c = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["sh", "-c", "hostname; grep db /etc/hosts; cat /proc/1/comm; touch /x 2>&1 || true"],
                                hostname="py-host", extra_hosts=["db:10.1.2.3"], init=True, read_only=True, cap_drop=["ALL"])
    cid = host.create_container(c)
    try:
        host.start_container(cid)
        assert host.wait_container(cid) == 0
        out = "".join(line.message for line in host.logs(cid))
        assert out.splitlines() == ["py-host", "10.1.2.3\tdb", "docker-init", "touch: /x: Read-only file system"], out
    finally:
        host.remove_container(cid, force=True)


def test_cpu_weight_cpu_set_swap_limit_and_ipc():
    text = "services:\n  web: {image: x, cpu_shares: 512, cpuset: '0', mem_limit: 64m, memswap_limit: 128m, ipc: none}\n"
    spec = sync.parse_compose("app", text).services[0].spec
    r = spec.resources
    assert (r.cpu_shares, r.cpuset_cpus, r.memory_swap_limit, spec.ipc) == (512, "0", 128 << 20, "none")
    oom = sync.parse_compose("app", "services:\n  db: {image: x, mem_limit: 1g, mem_swappiness: 10, oom_kill_disable: true, oom_score_adj: 100}\n").services[0].spec
    assert (oom.resources.memory_swappiness, oom.resources.oom_kill_disable, oom.oom_score_adj) == (10, True, 100)
    c = dockfleet.task_container(oom, 1)
    assert (c.memory_swappiness, c.oom_kill_disable, c.oom_score_adj) == (10, True, 100)
    gpu = sync.parse_compose("app", "services:\n  ml: {image: x, runtime: nvidia}\n").services[0].spec
    assert (gpu.runtime, dockfleet.task_container(gpu, 1).runtime) == ("nvidia", "nvidia")
    hosts = [dockfleet.HostState(name=n, available=True, cpus=2.0, memory_bytes=1 << 30, runtimes=r) for n, r in [("a", {"runc"}), ("b", {"runc", "nvidia"})]]
    placed = dockfleet.schedule(gpu, hosts, [1])
    assert [a.host for a in placed.assignments] == ["b"] and "no runtime nvidia" in placed.reasons["a"]
    with pytest.raises(dockfleet.InvalidArgumentError, match="oom_score_adj"):
        sync.parse_compose("a", "services:\n  a: {image: x, oom_score_adj: -2000}\n")
    try:
        sync.parse_compose("app", "services:\n  web: {image: x, memswap_limit: 1g}\n")
        raise AssertionError("a swap limit without a memory limit was accepted")
    except sync.InvalidArgumentError as e:
        assert "services.web.memswap_limit" in str(e), str(e)
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    c = dockfleet.task_container(spec, 1)
    c.name, c.labels, c.image, c.network, c.network_aliases = None, {}, "dockfleet/busybox:latest", None, []
    c.command = ["sh", "-c", "nproc; cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes; grep -c ' /dev/shm ' /proc/self/mounts"]
    cid = host.create_container(c)
    try:
        host.start_container(cid)
        host.wait_container(cid)
        out = "".join(line.message for line in host.logs(cid)).split()
        assert out == ["1", "512", str(128 << 20), "0"], out
    finally:
        host.remove_container(cid, force=True)


def test_logging_ulimits_sysctls_tmpfs_pids_limit_and_groups():
    text = "services:\n  web:\n    image: x\n    logging: {driver: local, options: {max-size: 1m}}\n    ulimits: {nofile: {soft: 1000, hard: 2000}}\n    sysctls: {net.core.somaxconn: 77}\n    tmpfs: [/scratch]\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert (spec.logging, spec.ulimits) == (dockfleet.LogConfig(driver="local", options={"max-size": "1m"}), [dockfleet.Ulimit(name="nofile", soft=1000, hard=2000)])
    assert (spec.sysctls, spec.tmpfs) == ({"net.core.somaxconn": "77"}, ["/scratch"])
    resolving = sync.parse_compose("app", "services:\n  web: {image: x, dns: 10.0.0.2, dns_search: a.internal, dns_opt: [ndots:2], shm_size: 1m}\n").services[0].spec
    assert (resolving.dns, resolving.dns_search, resolving.dns_opt, resolving.shm_size) == (["10.0.0.2"], ["a.internal"], ["ndots:2"], 1 << 20)
    try:
        list(sync.rollout(plain_fleet(sync), dockfleet.ServiceSpec(name="x", image="x", ulimits=[dockfleet.Ulimit(name="nofile", soft=2, hard=1)])))
        raise AssertionError("a soft limit over the hard one was accepted")
    except sync.InvalidArgumentError as e:
        assert "ulimits[0]" in str(e), str(e)
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    limited = sync.parse_compose("app", "services:\n  web: {image: x, pids_limit: 64, group_add: [1234]}\n").services[0].spec
    assert (limited.resources.pids_limit, limited.group_add) == (64, ["1234"])
    c = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["sh", "-c", "ulimit -n; cat /proc/sys/net/core/somaxconn; df -k /scratch | tail -1; cat /sys/fs/cgroup/pids/pids.max; id -G"],
                                ulimits=spec.ulimits, sysctls=spec.sysctls, tmpfs=["/scratch:size=1m"], logging=dockfleet.LogConfig(driver="json-file"),
                                pids_limit=64, group_add=["1234"])
    cid = host.create_container(c)
    try:
        host.start_container(cid)
        assert host.wait_container(cid) == 0
        out = "".join(line.message for line in host.logs(cid)).splitlines()
        assert out[:2] == ["1000", "77"] and out[2].split()[:2] == ["tmpfs", "1024"] and out[3:] == ["64", "0 1234"], out
    finally:
        host.remove_container(cid, force=True)


def assert_refused(spec, field):
    """A rollout of `spec` is refused before any engine call, naming `field`."""
    try:
        list(sync.rollout(plain_fleet(sync), spec))
        raise AssertionError(f"{spec} was accepted")
    except sync.InvalidArgumentError as e:
        assert field in str(e), str(e)


def test_security_options():
    text = "services:\n  web: {image: x, security_opt: ['no-new-privileges:true', 'seccomp:unconfined'], x-dockfleet: {allow_privileged: true}}\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert (spec.security_opt, spec.allow_privileged) == (["no-new-privileges:true", "seccomp:unconfined"], True)
    assert dockfleet.task_container(spec, 1).security_opt == spec.security_opt
    for bad, field in [(["apparmor=unconfined"], "security_opt[0]"), (["no-new-privileges", "seccomp=/etc/p.json"], "security_opt[1]")]:
        assert_refused(dockfleet.ServiceSpec(name="x", image="x", security_opt=bad), field)
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    c = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"],
                                security_opt=["no-new-privileges", "seccomp=unconfined"])
    cid = host.create_container(c)
    try:
        assert host.inspect_container(cid).security_opt == ["no-new-privileges=true", "seccomp=unconfined"]
        host.start_container(cid)
        assert host.wait_container(cid) == 0
        out = "".join(line.message for line in host.logs(cid)).split()
        assert out == ["NoNewPrivs:", "1", "Seccomp:", "0"], out
    finally:
        host.remove_container(cid, force=True)


def test_devices():
    text = "services:\n  web: {image: x, devices: ['/dev/fuse:/dev/reader:r']}\n"
    spec = sync.parse_compose("app", text).services[0].spec
    assert spec.devices == ["/dev/fuse:/dev/reader:r"] == dockfleet.task_container(spec, 1).devices
    for bad, field in [(["/dev/sda"], "devices[0]"), (["/dev/fuse", "/dev/fuse:rx"], "devices[1]")]:
        assert_refused(dockfleet.ServiceSpec(name="x", image="x", devices=bad), field)
    host = sync.Fleet.from_file(TESTBED / "fleet.toml").host("df-2")
    script = "(: < /dev/reader) 2>/dev/null && echo read; (: > /dev/reader) 2>/dev/null && echo write || echo refused"
    c = dockfleet.ContainerSpec(image="dockfleet/busybox:latest", command=["sh", "-c", script], devices=spec.devices)
    cid = host.create_container(c)
    try:
        host.start_container(cid)
        assert host.wait_container(cid) == 0
        out = "".join(line.message for line in host.logs(cid)).split()
        assert out == ["read", "refused"], out
    finally:
        host.remove_container(cid, force=True)


def test_python_stack_example_runs():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "examples" / "python" / "stack.py")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "shop-py_web 3/3 on" in out.stdout and "completed 3/3" in out.stdout and "removed 4 containers" in out.stdout, out.stdout
