// Discovery from Node: the embedded registry, watches, TTL sessions, and the registrator.
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet, fleet, unique, IMAGE } = require('./helpers.js')

test('register, lookup, watch, and a TTL entry that outlives its registrant by at most its TTL', async () => {
  const d = dockfleet.Discovery.embedded()
  assert.equal(d.backend, 'embedded')
  const watch = d.watch('web')[Symbol.asyncIterator]()
  const first = (await watch.next()).value
  assert.deepEqual([first.kind, first.instances], ['snapshot', []])
  await d.register({ service: 'web', id: 'a', address: '10.0.0.1', port: 80 })
  await d.register({ service: 'web', id: 'b', address: '10.0.0.2', port: 81, tags: ['canary'] })
  assert.deepEqual((await d.lookup('web', { tag: 'canary' })).map((i) => i.id), ['b'])
  await d.setHealth('web', 'a', 'critical')
  assert.deepEqual((await d.lookup('web')).map((i) => i.id), ['b'])
  assert.deepEqual((await d.lookup('web', { includeUnhealthy: true })).map((i) => i.id), ['a', 'b'])
  assert.deepEqual([(await watch.next()).value.kind, (await watch.next()).value.kind, (await watch.next()).value.kind],
    ['insert', 'insert', 'health'])
  assert.equal(await d.deregister('web', 'a'), true)
  assert.equal(await d.deregister('web', 'a'), false)
  await assert.rejects(d.setHealth('web', 'zzz', 'passing'), (e) => e.code === 'not_found')
  await assert.rejects(d.register({ service: 'web', id: 'x', address: '', port: 1 }),
    (e) => e.code === 'invalid_argument' && /address/.test(e.message))
  // A session's TTL'd entry lives while the session does.
  const owner = d.session()
  await owner.register({ service: 'web', id: 'c', address: '10.0.0.3', port: 82, ttl: 300 })
  await new Promise((r) => setTimeout(r, 700))
  assert.deepEqual((await d.lookup('web')).map((i) => i.id), ['b', 'c'])
  assert.equal((await d.lookup('web'))[1].ttl, 300)
  await watch.return()
})

test('the registrator registers a container that publishes a port', async () => {
  const f = new dockfleet.Fleet()
  for (const h of fleet().hosts()) if (h.name !== 'df-tls') f.add(h)
  const d = dockfleet.Discovery.embedded()
  const name = unique('jsdisc')
  const host = f.host('df-1')
  const id = await host.createContainer({
    image: IMAGE, command: ['httpd', '-f', '-p', '80', '-h', '/www'],
    labels: { 'dockfleet.test': name, 'dockfleet.discovery.service': name },
    ports: [{ containerPort: 80, hostPort: 0 }],
  })
  await host.startContainer(id)
  try {
    for await (const e of dockfleet.registrator(f, d, { resync: 1000 })) {
      if (e.kind === 'register' && e.service === name) break
    }
    const found = await d.lookup(name)
    assert.equal(found.length, 1)
    assert.equal(found[0].address, '10.250.0.11')
    assert.ok(found[0].port > 0 && found[0].port !== 80)
  } finally {
    await host.removeContainer(id, true)
  }
})

test('the etcd backend: register, lookup, watch, and a clear error for a wrong endpoint', async () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const { ROOT } = require('./helpers.js')
  execFileSync('bash', [path.join(ROOT, 'scripts', 'etcd.sh'), 'up'])
  const prefix = `/dockfleet-test/${unique('jsetcd')}`
  const d = await dockfleet.Discovery.etcd({ endpoints: ['http://127.0.0.1:23790'], prefix })
  assert.equal(d.backend, 'etcd')
  const watch = d.watch('api')[Symbol.asyncIterator]()
  assert.equal((await watch.next()).value.kind, 'snapshot')
  await d.register({ service: 'api', id: 'a', address: '10.0.0.1', port: 8080, metadata: { slot: '1' } })
  const ev = (await watch.next()).value
  assert.deepEqual([ev.kind, ev.instances[0].id, ev.instances[0].metadata.slot], ['insert', 'a', '1'])
  assert.deepEqual((await d.lookup('api')).map((i) => i.port), [8080])
  assert.deepEqual(await d.services(), ['api'])
  await watch.return()
  await assert.rejects(dockfleet.Discovery.etcd({ endpoints: ['http://127.0.0.1:1'], prefix, connectTimeout: 500, requestTimeout: 500 }),
    (e) => ['engine_unreachable', 'timeout'].includes(e.code) && /etcd/.test(e.message))
  await assert.rejects(dockfleet.Discovery.etcd({ endpoints: [], prefix }), (e) => e.code === 'invalid_argument')
})

test('the Node discovery example runs', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const { ROOT } = require('./helpers.js')
  const out = execFileSync('node', [path.join(ROOT, 'examples', 'node', 'discovery.js')], {
    encoding: 'utf8',
    env: { ...process.env, DOCKFLEET_NODE_PACKAGE: path.join(ROOT, 'bindings-node', 'dockfleet.js') },
    timeout: 300000,
  })
  assert.equal(out.match(/hello-js at 10\.250\.0\./g).length, 3)
  assert.match(out, /removed hello-js\./)
})

test('the Node proxy example runs', () => {
  const { execFileSync } = require('node:child_process')
  const path = require('node:path')
  const { ROOT } = require('./helpers.js')
  const out = execFileSync('node', [path.join(ROOT, 'examples', 'node', 'proxy.js')], {
    encoding: 'utf8',
    env: { ...process.env, DOCKFLEET_NODE_PACKAGE: path.join(ROOT, 'bindings-node', 'dockfleet.js') },
    timeout: 300000,
  })
  const answers = new Set(out.split('\n').filter((l) => l.startsWith('answered by')))
  assert.ok(answers.size >= 2, out)
  assert.match(out, /after killing one replica: 20 of 20 requests answered/)
})
