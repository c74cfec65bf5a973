// Deploying a service from Node onto the testbed's engines.
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet, fleet, unique, rejects, registry, IMAGE } = require('./helpers.js')

function plainFleet() {
  const f = new dockfleet.Fleet()
  for (const h of fleet().hosts()) if (h.name !== 'df-tls') f.add(h)
  return f
}

test('deploy, observe, re-plan nothing, remove', async () => {
  const f = plainFleet()
  const name = unique('jssvc').replaceAll('-', '_')
  const spec = { name, image: IMAGE, command: ['sleep', '600'], replicas: 3, stopGracePeriod: 1000 }
  const d = await dockfleet.deploy(f, spec)
  assert.deepEqual(d.plan.actions.map((a) => a.kind), ['create', 'create', 'create'])
  const o = await dockfleet.observe(f, name)
  assert.deepEqual(o.tasks.map((t) => t.host).sort(), ['df-1', 'df-2', 'df-3'])
  assert.ok(o.tasks.every((t) => t.specHash === dockfleet.specHash(spec)))
  assert.deepEqual(dockfleet.plan(spec, o).actions, [])
  assert.equal(await dockfleet.removeService(f, name), 3)
})

test('a service pulls its image with the fleet\'s registry credentials', async () => {
  const f = plainFleet()
  const auth = registry()
  const name = unique('jspull').replaceAll('-', '_')
  const remote = `${auth.server}/dockfleet-test/${name}:1`
  const df1 = f.host('df-1')
  await df1.tagImage(IMAGE, remote)
  for await (const p of df1.pushImage(remote, { auth })) void p
  await df1.removeImage(remote)
  const spec = { name, image: remote, command: ['sleep', '600'], replicas: 3, stopGracePeriod: 1000 }
  await rejects(dockfleet.deploy(f, spec), 'not_found')
  spec.pullPolicy = 'missing'
  await rejects(dockfleet.deploy(f, spec), 'unauthorized')
  assert.throws(() => f.setRegistryAuth({ ...auth, server: 'a/b' }), (e) => e.code === 'invalid_argument')
  f.setRegistryAuth(auth)
  assert.equal((await dockfleet.deploy(f, spec)).report.created.length, 3)
  for (const h of f.hosts()) assert.ok(await h.imageExists(remote), h.name)
  assert.equal(await dockfleet.removeService(f, name), 3)
  for (const h of f.hosts()) await h.removeImage(remote)
})

test('serviceLogs merges the tasks\' output, each chunk with its task', async () => {
  const f = plainFleet()
  const name = unique('jslogs').replaceAll('-', '_')
  const command = ['sh', '-c', 'echo hello from $(hostname); exec sleep 600']
  const spec = { name, image: IMAGE, command, replicas: 3, stopGracePeriod: 1000 }
  const created = (await dockfleet.deploy(f, spec)).report.created
  const lines = []
  const stream = dockfleet.serviceLogs(f, name, { follow: true })
  for await (const line of stream) {
    lines.push(line)
    if (lines.length === 3) break
  }
  const key = (l) => [l.id, l.slot, l.host, l.stream, l.message.trim()].join(' ')
  assert.deepEqual(lines.map(key).sort(), created.map((t) => key({ ...t, stream: 'stdout', message: `hello from ${t.id.slice(0, 12)}` })).sort())
  const last = []
  for await (const line of dockfleet.serviceLogs(f, name, { tail: 1 })) last.push(line.slot)
  assert.deepEqual(last.sort(), [1, 2, 3])
  assert.equal(await dockfleet.removeService(f, name), 3)
})

test('serviceStats samples each running task; prometheusText renders them', async () => {
  const f = plainFleet()
  const name = unique('jsstats').replaceAll('-', '_')
  const spec = { name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000 }
  const created = (await dockfleet.deploy(f, spec)).report.created
  const samples = await dockfleet.serviceStats(f, name)
  const key = (slot, host, id) => `${slot} ${host} ${id}`
  assert.deepEqual(samples.map((s) => key(s.slot, s.host, s.stats.id)), created.map((t) => key(t.slot, t.host, t.id)).sort())
  assert.ok(samples.every((s) => s.service === name && s.stats.pids >= 1 && s.stats.memoryBytes > 0), JSON.stringify(samples))
  const text = dockfleet.prometheusText(samples)
  assert.match(text, /^# TYPE dockfleet_task_network_receive_bytes_total counter$/m)
  const mem = text.split('\n').filter((l) => l.startsWith('dockfleet_task_memory_bytes{'))
  assert.deepEqual(mem, samples.map((s) =>
    `dockfleet_task_memory_bytes{host="${s.host}",id="${s.stats.id}",name="${s.name}",service="${name}",slot="${s.slot}"} ${s.stats.memoryBytes}`))
  assert.equal(await dockfleet.removeService(f, name), 2)
  assert.deepEqual(await dockfleet.serviceStats(f, name), [])
  await assert.rejects(dockfleet.serviceStats(f, 'no/such'), (e) => e.code === 'invalid_argument')
})

test('serviceExec runs in each task or one slot', async () => {
  const f = plainFleet()
  const name = unique('jsexec').replaceAll('-', '_')
  const spec = { name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000 }
  const created = (await dockfleet.deploy(f, spec)).report.created
  const runs = await dockfleet.serviceExec(f, name, ['sh', '-c', 'echo $WHO $(hostname); exit 4'], { env: { WHO: 'js' } })
  const key = (slot, id, code, out) => `${slot} ${id} ${code} ${out}`
  assert.deepEqual(runs.map((r) => key(r.slot, r.id, r.exitCode, r.stdout.trim())),
    created.map((t) => key(t.slot, t.id, 4, `js ${t.id.slice(0, 12)}`)).sort())
  assert.ok(runs.every((r) => r.errorCode == null))
  assert.deepEqual((await dockfleet.serviceExec(f, name, ['hostname'], { slot: 2 })).map((r) => r.slot), [2])
  await assert.rejects(dockfleet.serviceExec(f, name, ['hostname'], { slot: 7 }), (e) => e.code === 'not_found')
  await assert.rejects(dockfleet.serviceExec(f, name, []), (e) => e.code === 'invalid_argument')
  assert.equal(await dockfleet.removeService(f, name), 2)
})

test('the Node metrics example serves the tasks\' figures', async () => {
  const { spawn } = require('node:child_process')
  const path = require('node:path')
  const { ROOT } = require('./helpers.js')
  const f = plainFleet()
  const name = unique('jsmetrics').replaceAll('-', '_')
  await dockfleet.deploy(f, { name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000 })
  const example = spawn('node', [path.join(ROOT, 'examples', 'node', 'metrics.js'), name], {
    env: { ...process.env, DOCKFLEET_METRICS_PORT: '0', DOCKFLEET_NODE_PACKAGE: path.join(ROOT, 'bindings-node', 'dockfleet.js') },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const first = await new Promise((resolve, reject) => {
      example.stdout.once('data', (d) => resolve(String(d)))
      example.once('exit', (code) => reject(new Error(`the example exited with ${code}`)))
    })
    const url = first.split(' ')[1]
    const res = await fetch(url)
    assert.equal(res.status, 200)
    const pids = (await res.text()).split('\n').filter((l) => l.startsWith('dockfleet_task_pids{'))
    assert.deepEqual(pids.map((l) => /slot="(\d+)"/.exec(l)[1]), ['1', '2'])
    assert.ok(pids.every((l) => l.includes(`service="${name}"`)), pids.join('\n'))
    assert.equal((await fetch(url.replace('/metrics', '/'))).status, 404)
  } finally {
    example.kill()
    await dockfleet.removeService(f, name)
  }
})

test('a host-root bind is refused before anything is created', async () => {
  const f = plainFleet()
  const spec = { name: unique('jsbad').replaceAll('-', '_'), image: IMAGE, volumes: [{ source: '/', target: '/host' }] }
  await assert.rejects(dockfleet.deploy(f, spec), (e) => e.code === 'invalid_argument' && /volumes\[0\]\.source/.test(e.message))
  assert.deepEqual((await dockfleet.observe(f, spec.name)).tasks, [])
})

test('a shutdown delay holds a removed task out of service before its stop', async () => {
  const f = plainFleet()
  const name = unique('jsdrain').replaceAll('-', '_')
  const spec = { name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000, shutdownDelay: 1000 }
  await dockfleet.deploy(f, spec)
  const t = Date.now()
  const d = await dockfleet.deploy(f, { ...spec, replicas: 1 })
  assert.equal(d.report.removed.length, 1)
  assert.ok(Date.now() - t >= 1000, 'removed before its delay')
  assert.equal((await dockfleet.observe(f, name)).tasks.length, 1)
  assert.equal(await dockfleet.removeService(f, name), 1)
  await assert.rejects(dockfleet.deploy(f, { ...spec, shutdownDelay: 7200 * 1000 }), (e) => e.code === 'invalid_argument' && /shutdown_delay/.test(e.message))
  assert.deepEqual((await dockfleet.observe(f, name)).tasks, [])
})

test('supervise heals a killed task', async () => {
  const f = plainFleet()
  const name = unique('jsheal').replaceAll('-', '_')
  const spec = { name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000, restartPolicy: { delay: 200 } }
  const passes = dockfleet.supervise(f, spec, { resync: 30000 })
  const it = passes[Symbol.asyncIterator]()
  const first = (await it.next()).value
  assert.equal(first.trigger, 'start')
  const victim = first.deployment.report.created[0]
  await f.host(victim.host).killContainer(victim.id)
  const healed = (await it.next()).value
  assert.match(healed.trigger, /^event: /)
  assert.deepEqual(healed.deployment.report.removed, [victim.id])
  await it.return()
  assert.equal(await dockfleet.removeService(f, name), 2)
})

test('rollout reports progress, rollback restores, bad input is refused', async () => {
  const f = plainFleet()
  const name = unique('jsroll').replaceAll('-', '_')
  const spec = {
    name, image: IMAGE, command: ['sleep', '600'], replicas: 2, stopGracePeriod: 1000,
    updateConfig: { order: 'start-first', parallelism: 1, monitor: 200 },
  }
  const options = { readyTimeout: 15000 }
  const collect = async (stream) => { const out = []; for await (const e of stream) out.push(e); return out }
  assert.deepEqual((await collect(dockfleet.rollout(f, spec, options))).map((e) => e.kind), ['started', 'completed'])
  const v2 = { ...spec, env: { VERSION: '2' } }
  const events = await collect(dockfleet.rollout(f, v2, options))
  assert.deepEqual(events.map((e) => e.kind),
    ['started', 'task-started', 'task-updated', 'task-started', 'task-updated', 'completed'])
  assert.deepEqual(events.filter((e) => e.kind === 'task-updated').map((e) => [e.done, e.total]), [[1, 2], [2, 2]])
  let o = await dockfleet.observe(f, name)
  assert.ok(o.tasks.every((t) => t.specHash === dockfleet.specHash(v2) && t.previousSpecHash === dockfleet.specHash(spec)))
  assert.ok(o.specs[dockfleet.specHash(spec)].updateConfig.order === 'start-first')
  // A forced rollout restarts every task of the same spec and keeps what a rollback returns to.
  const ids = new Set(o.tasks.map((t) => t.id))
  const forced = await collect(dockfleet.rollout(f, v2, { ...options, force: true }))
  assert.deepEqual([forced.filter((e) => e.kind === 'task-updated').length, forced.at(-1).kind], [2, 'completed'])
  o = await dockfleet.observe(f, name)
  assert.ok(o.tasks.length === 2 && o.tasks.every((t) => !ids.has(t.id)))
  assert.ok(o.tasks.every((t) => t.specHash === dockfleet.specHash(v2) && t.previousSpecHash === dockfleet.specHash(spec)))
  const back = await collect(dockfleet.rollback(f, name, options))
  assert.deepEqual([back.at(-1).phase, back.at(-1).kind], ['rollback', 'completed'])
  o = await dockfleet.observe(f, name)
  assert.ok(o.tasks.every((t) => t.specHash === dockfleet.specHash(spec)))

  const bad = { ...spec, ports: [{ target: 80, published: 18082 }] }
  await assert.rejects(collect(dockfleet.rollout(f, bad)), (e) => e.code === 'invalid_argument' && /update_config\.order/.test(e.message))
  await assert.rejects(collect(dockfleet.rollback(f, unique('jsnone'))), (e) => e.code === 'not_found')
  assert.equal(dockfleet.LABEL_SPEC, 'dockfleet.spec')
  assert.equal(await dockfleet.removeService(f, name), 2)
})
