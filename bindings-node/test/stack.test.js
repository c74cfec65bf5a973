// Compose stacks from Node, and the network and volume calls they use.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { dockfleet, fleet, unique } = require('./helpers.js')

const COMPOSE = `
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
`

function plainFleet() {
  const f = new dockfleet.Fleet()
  for (const h of fleet().hosts()) if (h.name !== 'df-tls') f.add(h)
  return f
}

test('stackUp waits for a healthy dependency; stackPs and stackDown', async () => {
  const f = plainFleet()
  const name = unique('jsstack')
  const stack = dockfleet.parseCompose(name, COMPOSE)
  assert.deepEqual(stack.services.map((s) => s.name), ['api', 'web'])
  const events = []
  for await (const e of dockfleet.stackUp(f, stack)) events.push(e)
  const steps = events.filter((e) => ['started', 'waiting', 'completed'].includes(e.kind)).map((e) => `${e.service}:${e.kind}`)
  assert.ok(steps.indexOf(`${name}_api:started`) < steps.indexOf(`${name}:waiting`))
  assert.ok(steps.indexOf(`${name}:waiting`) < steps.indexOf(`${name}_web:started`), steps.join(' '))
  assert.equal(steps.at(-1), `${name}:completed`)
  const ps = Object.fromEntries((await dockfleet.stackPs(f, name)).map((s) => [s.name, s]))
  assert.deepEqual([ps[`${name}_api`].running, ps[`${name}_web`].running], [1, 2])
  const down = await dockfleet.stackDown(f, name)
  assert.deepEqual([down.containers, down.networks, down.volumes], [3, 3, 0])
  assert.deepEqual(await dockfleet.stackPs(f, name), [])
})

test('a bad compose file names the field and throws with a code', () => {
  assert.throws(() => dockfleet.parseCompose('bad', 'services:\n  web: {image: x, deploy: {replicas: lots}}\n'),
    (e) => e.code === 'invalid_argument' && /services\.web\.deploy\.replicas/.test(e.message))
  assert.equal(dockfleet.LABEL_STACK, 'com.docker.stack.namespace')
  assert.throws(() => dockfleet.parseCompose('bad', 'services:\n  web: {image: x, working_dir: srv}\n'),
    (e) => e.code === 'invalid_argument' && /services\.web\.working_dir/.test(e.message))
})

test('include and .env', () => {
  const fs = require('node:fs')
  const path = require('node:path')
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'dockfleet-include-'))
  fs.mkdirSync(path.join(dir, 'db'))
  fs.writeFileSync(path.join(dir, '.env'), 'TAG=2.1\n')
  fs.writeFileSync(path.join(dir, 'db', '.env'), 'DB_IMAGE="db:${TAG}"\n')
  fs.writeFileSync(path.join(dir, 'db', 'compose.yaml'), "services:\n  db: {image: '${DB_IMAGE}', build: ./ctx}\n")
  const main = path.join(dir, 'compose.yaml')
  fs.writeFileSync(main, "include: [db/compose.yaml]\nservices:\n  web: {image: 'web:${TAG}', depends_on: [db]}\n")
  const by = Object.fromEntries(dockfleet.loadCompose('inc', main).services.map((s) => [s.name, s]))
  assert.deepEqual([by.web.spec.image, by.db.spec.image], ['web:2.1', 'db:2.1'])
  assert.equal(by.db.build.context, `${path.join(dir, 'db')}/./ctx`)
  fs.writeFileSync(path.join(dir, 'prod.yaml'), "services:\n  web: {image: 'web:prod', deploy: {replicas: 3}}\n")
  const web = dockfleet.loadComposeFiles('inc', [main, path.join(dir, 'prod.yaml')]).services.find((s) => s.name === 'web')
  assert.deepEqual([web.spec.image, web.spec.replicas, web.dependsOn[0].service], ['web:prod', 3, 'db'])
  fs.writeFileSync(main, 'include: [db/compose.yaml]\nservices:\n  db: {image: other}\n')
  assert.throws(() => dockfleet.loadCompose('inc', main),
    (e) => e.code === 'invalid_argument' && /include\[0\]\.services\.db/.test(e.message))
  fs.rmSync(dir, { recursive: true })
})

test('entrypoint, working directory, user and stop signal from a compose file', () => {
  const text = "services:\n  web:\n    image: x\n    entrypoint: /bin/sh -c\n    command: [echo hi]\n    working_dir: /srv\n    user: '65534'\n    stop_signal: SIGQUIT\n"
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.entrypoint, spec.command, spec.workingDir, spec.user, spec.stopSignal], [['/bin/sh', '-c'], ['echo hi'], '/srv', '65534', 'SIGQUIT'])
  const agent = dockfleet.parseCompose('app', 'services:\n  a: {image: x, pid: host, x-dockfleet: {allow_privileged: true}}\n').services[0].spec
  assert.deepEqual([agent.pid, dockfleet.taskContainer(agent, 1).pid, spec.pid], ['host', 'host', null])
  const terminal = dockfleet.parseCompose('app', 'services:\n  web: {image: x, tty: true, stdin_open: true}\n').services[0].spec
  const c = dockfleet.taskContainer(terminal, 1)
  assert.deepEqual([terminal.tty, terminal.stdinOpen, c.tty, c.stdinOpen, spec.tty], [true, true, true, true, false])
})

test('container_name and links from a compose file', () => {
  const text = "services:\n  web: {image: x, links: ['db:database']}\n  db: {image: x, container_name: shop-db}\n"
  const by = Object.fromEntries(dockfleet.parseCompose('shop', text).services.map((s) => [s.name, s]))
  assert.deepEqual(by.db.spec.networkAliases, ['db', 'shop-db', 'database'])
  assert.deepEqual(by.web.dependsOn.map((d) => [d.service, d.condition]), [['db', 'service_started']])
  assert.throws(() => dockfleet.parseCompose('shop', 'services:\n  web: {image: x, container_name: w, scale: 2}\n'),
    (e) => e.code === 'invalid_argument' && /services\.web\.container_name/.test(e.message))
})

test('network_mode host from a compose file', () => {
  const text = "services:\n  agent: {image: x, network_mode: host, ports: ['9100:9100']}\n"
  const { spec } = dockfleet.parseCompose('mon', text).services[0]
  assert.deepEqual([spec.networks, spec.networkAliases, spec.ports[0].target], [['host'], [], 9100])
  assert.throws(() => dockfleet.parseCompose('mon', "services:\n  agent: {image: x, network_mode: host, ports: ['8080:9100']}\n"),
    (e) => e.code === 'invalid_argument' && /services\.agent\.ports\[0\]\.published/.test(e.message))
  assert.throws(() => dockfleet.parseCompose('mon', "services:\n  agent: {image: x, network_mode: 'service:db'}\n  db: {image: x}\n"),
    (e) => e.code === 'invalid_argument' && /services\.agent\.network_mode/.test(e.message))
})

test('an abandoned stackUp removes the networks it created', async () => {
  const f = plainFleet()
  const name = unique('jsabandon')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jsabandon-'))
  fs.mkdirSync(path.join(dir, 'app'))
  fs.writeFileSync(path.join(dir, 'app', 'Dockerfile'), 'FROM dockfleet/busybox:latest\nRUN sleep 20\n')
  const stack = dockfleet.parseCompose(name, 'services:\n  app: {build: ./app, networks: [back]}\nnetworks:\n  back: {}\n', dir)
  const networks = async () => {
    let n = 0
    for (const h of ['df-1', 'df-2', 'df-3']) n += (await f.host(h).listNetworks([`com.docker.stack.namespace=${name}`])).length
    return n
  }
  let created = 0
  for await (const e of dockfleet.stackUp(f, stack)) {
    if (e.kind === 'build') {
      created = await networks()
      break
    }
  }
  assert.equal(created, 3)
  const deadline = Date.now() + 20000
  while (await networks() > 0) {
    assert.ok(Date.now() < deadline, 'the networks of the abandoned stackUp stayed')
    await new Promise((r) => setTimeout(r, 100))
  }
  fs.rmSync(dir, { recursive: true })
})

test('networks and volumes on one host, with their options', async () => {
  const host = fleet().host('df-3')
  const name = unique('jsnet')
  const labels = { 'dockfleet.test': name }
  const ipam = [{ subnet: '10.78.92.0/24', ipRange: '10.78.92.64/26', auxAddresses: { router: '10.78.92.2' } }]
  const id = await host.createNetwork(name, { labels, internal: true, driverOpts: { 'com.docker.network.driver.mtu': '1400' }, ipam })
  const [net] = await host.listNetworks([`dockfleet.test=${name}`])
  assert.deepEqual([net.id, net.driver, net.internal, net.enableIpv6, net.driverOpts], [id, 'bridge', true, false, { 'com.docker.network.driver.mtu': '1400' }])
  assert.deepEqual([net.ipam[0].subnet, net.ipam[0].ipRange, net.ipam[0].auxAddresses], ['10.78.92.0/24', '10.78.92.64/26', { router: '10.78.92.2' }])
  await assert.rejects(host.createNetwork(name, { labels }), (e) => e.code === 'conflict')
  await host.removeNetwork(name)
  // Bad options are refused by field before any engine call.
  await assert.rejects(host.createNetwork(name, { labels, ipam: [{ subnet: 'fd00:1::/64' }] }),
    (e) => e.code === 'invalid_argument' && e.message.includes('options.ipam[0].subnet') && e.message.includes('enable_ipv6'))
  assert.deepEqual(await host.listNetworks([`dockfleet.test=${name}`]), [])
  const driverOpts = { type: 'tmpfs', device: 'tmpfs', o: 'size=1m' }
  const v = await host.createVolume(name, { labels, driverOpts })
  assert.deepEqual([v.name, v.driver, v.driverOpts], [name, 'local', driverOpts])
  assert.deepEqual((await host.listVolumes([`dockfleet.test=${name}`])).map((x) => x.name), [name])
  await host.removeVolume(name)
  assert.deepEqual(await host.listVolumes([`dockfleet.test=${name}`]), [])
  await assert.rejects(host.createVolume(name, { labels, driverOpts: { uid: '1000' } }),
    (e) => e.code === 'invalid_argument' && e.message.includes('options.driver_opts.uid'))
  assert.deepEqual(await host.listVolumes([`dockfleet.test=${name}`]), [])
})

test('a container joins further networks and answers to its aliases there', async () => {
  const host = fleet().host('df-3')
  const name = unique('jsalias')
  const [front, back] = [`${name}-front`, `${name}-back`]
  for (const n of [front, back]) await host.createNetwork(n, { labels: { 'dockfleet.test': name } })
  const ids = []
  try {
    const server = { image: 'dockfleet/busybox:latest', command: ['sleep', '600'], network: front, extraNetworks: [back], networkAliases: ['db'] }
    const client = { image: 'dockfleet/busybox:latest', command: ['sleep', '600'], network: back }
    for (const spec of [server, client]) {
      ids.push(await host.createContainer(spec))
      await host.startContainer(ids.at(-1))
    }
    const d = await host.inspectContainer(ids[0])
    assert.deepEqual([Object.keys(d.networks).sort(), d.privileged], [[front, back].sort(), false])
    const out = await host.exec(ids[1], ['nslookup', 'db'])
    assert.ok(out.stdout.includes(d.networks[back]), out.stdout)
  } finally {
    for (const id of ids) await host.removeContainer(id, true)
    for (const n of [front, back]) await host.removeNetwork(n)
  }
  await assert.rejects(host.createContainer({ image: 'x', networkAliases: ['db'] }),
    (e) => e.code === 'invalid_argument' && e.message.includes('network_aliases[0]'))
})

test('compose services join all their networks and answer to their names', () => {
  const text = 'services:\n  web: {image: x, networks: [a, b]}\nnetworks: {a: {}, b: {}}\n'
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.networks, spec.networkAliases], [['app_a', 'app_b'], ['web']])
  const more = 'services:\n  web: {image: x, expose: [3000], networks: {a: {aliases: [api]}}}\nnetworks: {a: {}}\n'
  const { spec: exposing } = dockfleet.parseCompose('app', more).services[0]
  assert.deepEqual([exposing.networkAliases, exposing.ports.map((p) => [p.target, p.published])], [['web', 'api'], [[3000, null]]])
  assert.equal(dockfleet.parseCompose('app', 'services:\n  web: {image: x, deploy: {endpoint_mode: dnsrr}}\n').services[0].spec.endpointMode, 'dnsrr')
  const labelled = dockfleet.parseCompose('app', 'services:\n  web: {image: x, networks: [a]}\nnetworks: {a: {labels: {tier: net}, internal: true, ipam: {config: [{subnet: 10.9.0.0/24}]}}}\nvolumes: {v: {labels: [tier=data], driver_opts: {type: tmpfs, device: tmpfs}}}\n')
  const files = dockfleet.parseCompose('app', 'secrets: {token: {environment: APP_TOKEN}}\nconfigs: {motd: {content: hi, labels: {tier: conf}}}\nservices:\n  web: {image: x, secrets: [token], configs: [motd]}\n')
  assert.deepEqual([...files.secrets, ...files.configs].map((f) => [f.name, f.file, f.environment, f.content]), [['app_token', null, 'APP_TOKEN', null], ['app_motd', null, null, 'hi']])
  assert.deepEqual(files.configs[0].labels, { tier: 'conf' })
  assert.throws(() => dockfleet.parseCompose('app', 'secrets: {token: {content: hi}}\nservices:\n  web: {image: x}\n'),
    (e) => e.code === 'invalid_argument' && e.message.includes('secrets.token.content'))
  const [net, vol] = [labelled.networkOptions.app_a, labelled.volumeOptions.app_v]
  assert.deepEqual([net.labels, net.internal, net.ipam.map((p) => p.subnet)], [{ tier: 'net' }, true, ['10.9.0.0/24']])
  assert.deepEqual([vol.labels, vol.driverOpts], [{ tier: 'data' }, { type: 'tmpfs', device: 'tmpfs' }])
  const { ports } = dockfleet.parseCompose('app', 'services:\n  web: {image: x, ports: [{target: 80, published: 8080, mode: ingress, name: web}]}\n').services[0].spec
  assert.deepEqual(ports.map((p) => [p.target, p.published, p.mode]), [[80, 8080, 'ingress']])
  assert.throws(() => dockfleet.parseCompose('app', 'services:\n  web: {image: x, deploy: {endpoint_mode: rr}}\n'),
    (e) => e.code === 'invalid_argument' && e.message.includes('services.web.deploy.endpoint_mode'))
})

test('hostname, extra hosts, init, a read-only root and capabilities', async () => {
  const text = 'services:\n  web:\n    image: x\n    hostname: web-{{.Task.Slot}}\n    extra_hosts: [a=10.0.0.1]\n    init: true\n    read_only: true\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n'
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.hostname, spec.extraHosts, spec.init, spec.readOnly, spec.capAdd, spec.capDrop], ['web-{{.Task.Slot}}', ['a:10.0.0.1'], true, true, ['NET_ADMIN'], ['ALL']])
  assert.equal(dockfleet.taskContainer(spec, 3).hostname, 'web-3')
  assert.deepEqual(dockfleet.taskContainer({ ...spec, env: { SLOT: '{{ .Task.Slot }} of {{.Service.Name}}' } }, 3).env, { SLOT: '3 of app_web' })
  for (const [bad, field] of [[{ capAdd: ['SYS_ADMIN'] }, 'cap_add[0]'], [{ hostname: '{{.Node.ID}}' }, 'hostname'], [{ extraHosts: ['a'] }, 'extra_hosts[0]']]) {
    const events = dockfleet.rollout(fleet(), { ...spec, name: 'x', ...bad })
    await assert.rejects(async () => { for await (const e of events) void e }, (e) => e.code === 'invalid_argument' && e.message.includes(field))
  }
  const host = fleet().host('df-3')
  const id = await host.createContainer({
    image: 'dockfleet/busybox:latest', command: ['sh', '-c', 'hostname; grep db /etc/hosts; cat /proc/1/comm; touch /x 2>&1 || true'],
    hostname: 'js-host', extraHosts: ['db:10.1.2.3'], init: true, readOnly: true, capDrop: ['ALL'],
  })
  try {
    await host.startContainer(id)
    assert.equal(await host.waitContainer(id), 0)
    let out = ''
    for await (const line of host.logs(id)) out += line.message
    assert.deepEqual(out.trim().split('\n'), ['js-host', '10.1.2.3\tdb', 'docker-init', 'touch: /x: Read-only file system'])
  } finally {
    await host.removeContainer(id, true)
  }
})

test('logging, ulimits, sysctls, tmpfs, a process limit and groups', async () => {
  const text = 'services:\n  web:\n    image: x\n    logging: {driver: local, options: {max-size: 1m}}\n    ulimits: {nofile: {soft: 1000, hard: 2000}}\n    sysctls: {net.core.somaxconn: 77}\n    tmpfs: [/scratch]\n'
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.logging, spec.ulimits, spec.sysctls, spec.tmpfs],
    [{ driver: 'local', options: { 'max-size': '1m' } }, [{ name: 'nofile', soft: 1000, hard: 2000 }], { 'net.core.somaxconn': '77' }, ['/scratch']])
  const { spec: resolving } = dockfleet.parseCompose('app', 'services:\n  web: {image: x, dns: 10.0.0.2, dns_search: a.internal, dns_opt: [ndots:2], shm_size: 1m}\n').services[0]
  assert.deepEqual([resolving.dns, resolving.dnsSearch, resolving.dnsOpt, resolving.shmSize], [['10.0.0.2'], ['a.internal'], ['ndots:2'], 1048576])
  const { spec: limited } = dockfleet.parseCompose('app', 'services:\n  web: {image: x, pids_limit: 64, group_add: [1234]}\n').services[0]
  assert.deepEqual([limited.resources.pidsLimit, limited.groupAdd], [64, ['1234']])
  const events = dockfleet.rollout(fleet(), { ...spec, name: 'x', ulimits: [{ name: 'nofile', soft: 2, hard: 1 }] })
  await assert.rejects(async () => { for await (const e of events) void e }, (e) => e.code === 'invalid_argument' && e.message.includes('ulimits[0]'))
  const host = fleet().host('df-3')
  const id = await host.createContainer({
    image: 'dockfleet/busybox:latest', command: ['sh', '-c', 'ulimit -n; cat /proc/sys/net/core/somaxconn; df -k /scratch | tail -1; cat /sys/fs/cgroup/pids/pids.max; id -G'],
    ulimits: spec.ulimits, sysctls: spec.sysctls, tmpfs: ['/scratch:size=1m'], logging: { driver: 'json-file', options: {} },
    pidsLimit: 64, groupAdd: ['1234'],
  })
  try {
    await host.startContainer(id)
    assert.equal(await host.waitContainer(id), 0)
    let out = ''
    for await (const line of host.logs(id)) out += line.message
    const lines = out.trim().split('\n')
    assert.deepEqual([lines[0], lines[1], lines[2].split(/\s+/).slice(0, 2), ...lines.slice(3)], ['1000', '77', ['tmpfs', '1024'], '64', '0 1234'])
  } finally {
    await host.removeContainer(id, true)
  }
})

test('CPU weight, CPU set, swap limit and IPC namespace', async () => {
  const text = "services:\n  web: {image: x, cpu_shares: 512, cpuset: '0', mem_limit: 64m, memswap_limit: 128m, ipc: none}\n"
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.resources.cpuShares, spec.resources.cpusetCpus, spec.resources.memorySwapLimit, spec.ipc], [512, '0', 128 << 20, 'none'])
  const { spec: oom } = dockfleet.parseCompose('app', 'services:\n  db: {image: x, mem_limit: 1g, mem_swappiness: 10, oom_kill_disable: true, oom_score_adj: 100}\n').services[0]
  assert.deepEqual([oom.resources.memorySwappiness, oom.resources.oomKillDisable, oom.oomScoreAdj], [10, true, 100])
  const t = dockfleet.taskContainer(oom, 1)
  assert.deepEqual([t.memorySwappiness, t.oomKillDisable, t.oomScoreAdj], [10, true, 100])
  const { spec: gpu } = dockfleet.parseCompose('app', 'services:\n  ml: {image: x, runtime: nvidia}\n').services[0]
  assert.deepEqual([gpu.runtime, dockfleet.taskContainer(gpu, 1).runtime], ['nvidia', 'nvidia'])
  const hosts = [['a', ['runc']], ['b', ['runc', 'nvidia']]].map(([name, runtimes]) => ({ name, available: true, cpus: 2, memoryBytes: 1 << 30, runtimes }))
  const placed = dockfleet.schedule(gpu, hosts, [1])
  assert.deepEqual(placed.assignments.map((a) => a.host), ['b'])
  assert.match(placed.reasons.a, /no runtime nvidia/)
  assert.throws(() => dockfleet.parseCompose('a', 'services:\n  a: {image: x, oom_score_adj: -2000}\n'),
    (e) => e.code === 'invalid_argument' && e.message.includes('services.a.oom_score_adj'))
  assert.throws(() => dockfleet.parseCompose('app', 'services:\n  web: {image: x, memswap_limit: 1g}\n'),
    (e) => e.code === 'invalid_argument' && e.message.includes('services.web.memswap_limit'))
  const host = fleet().host('df-3')
  const c = dockfleet.taskContainer(spec, 1)
  const id = await host.createContainer({ ...c, name: null, labels: {}, network: null, networkAliases: [], image: 'dockfleet/busybox:latest', command: ['sh', '-c', "nproc; cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes; grep -c ' /dev/shm ' /proc/self/mounts"] })
  try {
    await host.startContainer(id)
    await host.waitContainer(id)
    let out = ''
    for await (const line of host.logs(id)) out += line.message
    assert.deepEqual(out.trim().split('\n'), ['1', '512', String(128 << 20), '0'])
  } finally {
    await host.removeContainer(id, true)
  }
})

test('security options', async () => {
  const text = "services:\n  web: {image: x, security_opt: ['no-new-privileges:true', 'seccomp:unconfined'], x-dockfleet: {allow_privileged: true}}\n"
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.securityOpt, spec.allowPrivileged], [['no-new-privileges:true', 'seccomp:unconfined'], true])
  assert.deepEqual(dockfleet.taskContainer(spec, 1).securityOpt, spec.securityOpt)
  for (const [bad, field] of [[['apparmor=unconfined'], 'security_opt[0]'], [['no-new-privileges', 'seccomp=/etc/p.json'], 'security_opt[1]']]) {
    const events = dockfleet.rollout(fleet(), { name: 'x', image: 'x', securityOpt: bad })
    await assert.rejects(async () => { for await (const e of events) void e }, (e) => e.code === 'invalid_argument' && e.message.includes(field))
  }
  const host = fleet().host('df-3')
  const id = await host.createContainer({
    image: 'dockfleet/busybox:latest', command: ['grep', '-E', '^(NoNewPrivs|Seccomp):', '/proc/self/status'],
    securityOpt: ['no-new-privileges', 'seccomp=unconfined'],
  })
  try {
    assert.deepEqual((await host.inspectContainer(id)).securityOpt, ['no-new-privileges=true', 'seccomp=unconfined'])
    await host.startContainer(id)
    assert.equal(await host.waitContainer(id), 0)
    let out = ''
    for await (const line of host.logs(id)) out += line.message
    assert.deepEqual(out.trim().split(/\s+/), ['NoNewPrivs:', '1', 'Seccomp:', '0'])
  } finally {
    await host.removeContainer(id, true)
  }
})

test('devices', async () => {
  const text = "services:\n  web: {image: x, devices: ['/dev/fuse:/dev/reader:r']}\n"
  const { spec } = dockfleet.parseCompose('app', text).services[0]
  assert.deepEqual([spec.devices, dockfleet.taskContainer(spec, 1).devices], [['/dev/fuse:/dev/reader:r'], ['/dev/fuse:/dev/reader:r']])
  for (const [bad, field] of [[['/dev/sda'], 'devices[0]'], [['/dev/fuse', '/dev/fuse:rx'], 'devices[1]']]) {
    const events = dockfleet.rollout(fleet(), { name: 'x', image: 'x', devices: bad })
    await assert.rejects(async () => { for await (const e of events) void e }, (e) => e.code === 'invalid_argument' && e.message.includes(field))
  }
  const host = fleet().host('df-3')
  const script = '(: < /dev/reader) 2>/dev/null && echo read; (: > /dev/reader) 2>/dev/null && echo write || echo refused'
  const id = await host.createContainer({ image: 'dockfleet/busybox:latest', command: ['sh', '-c', script], devices: spec.devices })
  try {
    await host.startContainer(id)
    assert.equal(await host.waitContainer(id), 0)
    let out = ''
    for await (const line of host.logs(id)) out += line.message
    assert.deepEqual(out.trim().split(/\s+/), ['read', 'refused'])
  } finally {
    await host.removeContainer(id, true)
  }
})

test('the Node stack example runs', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const { ROOT } = require('./helpers.js')
  const out = execFileSync('node', [path.join(ROOT, 'examples', 'node', 'stack.js')], {
    encoding: 'utf8',
    env: { ...process.env, DOCKFLEET_NODE_PACKAGE: path.join(ROOT, 'bindings-node', 'dockfleet.js') },
    timeout: 300000,
  })
  assert.match(out, /shop-js_web 3\/3 on/)
  assert.match(out, /completed 3\/3/)
  assert.match(out, /removed 4 containers/)
})
