// The Swarm-mode backend from Node: the swarm's lifecycle, a service rolled out, scaled and removed
// through the same functions a Fleet takes, errors with their codes, and the example that deploys one
// stack on both backends.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { dockfleet, fleet, unique, rejects, IMAGE, ROOT } = require('./helpers.js')

function plainFleet() {
  const f = new dockfleet.Fleet()
  for (const h of fleet().hosts()) if (h.name !== 'df-tls') f.add(h)
  return f
}

const sleeper = (prefix, replicas) => ({
  name: unique(prefix).replaceAll('-', '_'),
  image: IMAGE,
  command: ['sleep', '600'],
  replicas,
  stopGracePeriod: 1000,
})

async function collect(stream) {
  const out = []
  for await (const e of stream) out.push(e)
  return out
}

test('Swarm: init, join, nodes, labels; a service through rollout, scale, serviceStatus, serviceLogs, removeService', async () => {
  const f = plainFleet()
  await rejects(dockfleet.Swarm.connect(f), 'not_found')
  await rejects(dockfleet.Swarm.init(f, 'df-1', { publishMode: 'mesh' }), 'invalid_argument')
  const swarm = await dockfleet.Swarm.init(f, 'df-1', { timeout: 120000 })
  try {
    assert.equal(swarm.options().timeout, 120000)
    assert.deepEqual(swarm.fleet().names(), ['df-1', 'df-2', 'df-3'])
    const node = await swarm.join('df-2', 'worker')
    assert.deepEqual([node.host, node.role], ['df-2', 'worker'])
    await rejects(swarm.join('df-3', 'boss'), 'invalid_argument')
    assert.deepEqual((await swarm.nodes()).map((n) => [n.host, n.role]), [['df-1', 'manager'], ['df-2', 'worker']])
    const labelled = await swarm.setNodeLabels('df-2', { zone: 'a', disk: 'ssd' })
    assert.equal(labelled.labels.disk, 'ssd')
    assert.equal(labelled.labels[dockfleet.LABEL_NODE_HOST], 'df-2')
    await rejects(swarm.setAvailability('df-2', 'gone'), 'invalid_argument')
    assert.equal((await swarm.setRole('df-2', 'manager')).role, 'manager')
    assert.deepEqual((await swarm.nodes()).map((n) => n.role), ['manager', 'manager'])
    assert.equal((await swarm.setRole('df-2', 'worker')).role, 'worker')
    await rejects(swarm.setRole('df-2', 'boss'), 'invalid_argument')

    const spec = {
      ...sleeper('jssw', 2),
      command: ['sh', '-c', 'echo hello; exec sleep 600'],
      placement: { constraints: ['disk==ssd'] },
    }
    const events = await collect(dockfleet.rollout(swarm, spec))
    assert.deepEqual([events.at(-1).phase, events.at(-1).kind], ['update', 'completed'])
    let st = await dockfleet.serviceStatus(swarm, spec.name)
    assert.deepEqual([st.desired, st.running], [2, 2])
    assert.deepEqual([...new Set(st.tasks.map((t) => t.host))], ['df-2'])
    st = await dockfleet.scale(swarm, spec.name, 1)
    assert.deepEqual([st.desired, st.running], [1, 1])
    // Service logs: the tasks' output (the one scaled away kept by Swarm as history) with their node.
    const lines = await collect(dockfleet.serviceLogs(swarm, spec.name))
    assert.ok(lines.length > 0)
    assert.deepEqual([...new Set(lines.map((l) => `${l.host} ${l.stream} ${l.message.trim()}`))], ['df-2 stdout hello'])
    assert.ok(lines.some((l) => l.id === st.tasks[0].id), JSON.stringify(lines))
    const bad = { ...sleeper('jssw-bad', 1), placement: { strategy: 'binpack' } }
    const err = await rejects(collect(dockfleet.rollout(swarm, bad)), 'invalid_argument')
    assert.match(err.message, /placement\.strategy/)
    assert.equal(await dockfleet.removeService(swarm, spec.name), 1)
    await rejects(dockfleet.serviceStatus(swarm, spec.name), 'not_found')
    await rejects(collect(dockfleet.serviceLogs(swarm, spec.name)), 'not_found')

    // Secrets and configs: created from bytes, mounted into the tasks, refused by a fleet.
    const [pw, conf] = [unique('jssw-pw'), unique('jssw-conf')]
    assert.ok(await swarm.createSecret(pw, Buffer.from('hunter2'), { owner: 'node' }))
    await rejects(swarm.createSecret(pw, Buffer.from('again')), 'conflict')
    await swarm.createConfig(conf, Buffer.from('answer = 42'))
    const files = {
      ...sleeper('jssw-files', 1),
      secrets: [{ source: pw, target: 'db_password', mode: 0o400 }],
      configs: [{ source: conf, target: '/etc/app.conf' }],
    }
    const refused = await rejects(collect(dockfleet.rollout(f, files)), 'invalid_argument')
    assert.match(refused.message, /secrets/)
    assert.equal((await collect(dockfleet.rollout(swarm, files))).at(-1).kind, 'completed')
    const task = (await dockfleet.serviceStatus(swarm, files.name)).tasks[0]
    const out = await f.host(task.host).exec(task.id, ['cat', '/run/secrets/db_password', '/etc/app.conf'])
    assert.equal(out.stdout, 'hunter2answer = 42')
    await rejects(swarm.removeSecret(pw), 'conflict')
    assert.equal(await dockfleet.removeService(swarm, files.name), 1)
    await swarm.removeSecret(pw)
    await swarm.removeConfig(conf)
    await rejects(swarm.removeConfig(conf), 'not_found')
    assert.match((await rejects(dockfleet.scale({}, spec.name, 1), 'invalid_argument')).message, /Fleet|Swarm|class/i)
  } finally {
    await swarm.dissolve()
  }
})

test('scale and serviceStatus on a Fleet', async () => {
  const f = plainFleet()
  const spec = sleeper('jsfl', 1)
  await collect(dockfleet.rollout(f, spec))
  try {
    const st = await dockfleet.scale(f, spec.name, 3)
    assert.deepEqual([st.desired, st.running, st.tasks.length], [3, 3, 3])
  } finally {
    assert.equal(await dockfleet.removeService(f, spec.name), 3)
  }
})

test('the Node swarm example runs', () => {
  const out = execFileSync('node', [path.join(ROOT, 'examples', 'node', 'swarm.js')], {
    encoding: 'utf8',
    env: { ...process.env, DOCKFLEET_NODE_PACKAGE: path.join(ROOT, 'bindings-node', 'dockfleet.js') },
    timeout: 300000,
  })
  for (const kind of ['fleet', 'swarm']) {
    assert.match(out, new RegExp(`\\[${kind}\\] 2 service\\(s\\) deployed`))
    assert.match(out, new RegExp(`\\[${kind}\\] shop-js_web 3/3 on`))
    assert.match(out, new RegExp(`\\[${kind}\\] removed 4 tasks`))
  }
  assert.match(out, /\[swarm\] shop-js_db 1\/1 on df-1#1/)
})
