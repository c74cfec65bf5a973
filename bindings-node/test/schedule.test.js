// The scheduler and service spec from Node (pure: no engine needed).
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet } = require('./helpers.js')

const hosts = () =>
  [0, 1, 2, 3].map((i) => ({ name: `h${i}`, labels: { zone: 'ab'[i % 2], role: i === 0 ? 'manager' : 'worker' }, available: true, cpus: 4, memoryBytes: 8 * 2 ** 30 }))

test('spread with a constraint, deterministic, with reasons', () => {
  const spec = { name: 'web', image: 'img', replicas: 6, placement: { constraints: ['role!=manager'] } }
  const s = dockfleet.schedule(spec, hosts(), [1, 2, 3, 4, 5, 6], { seed: 3 })
  const perHost = {}
  for (const a of s.assignments) perHost[a.host] = (perHost[a.host] || 0) + 1
  assert.deepEqual(perHost, { h1: 2, h2: 2, h3: 2 })
  assert.match(s.reasons.h0, /role!=manager/)
  assert.deepEqual(s, dockfleet.schedule(spec, hosts(), [1, 2, 3, 4, 5, 6], { seed: 3 }))
})

test('published port in use: a slot unplaced, a reason per host', () => {
  const hs = hosts()
  hs[1].usedPorts = ['8080/tcp']
  const s = dockfleet.schedule({ name: 'web', image: 'img', ports: [{ target: 80, published: 8080 }] }, hs, [1, 2, 3, 4])
  assert.equal(s.assignments.length, 3)
  assert.deepEqual(s.unplaced, [4])
  assert.match(s.reasons.h1, /8080\/tcp/)
  assert.equal(Object.keys(s.reasons).length, 4)
})

test('node.runs places by where another service runs', () => {
  const hs = hosts()
  hs[2].services = ['shop_db']
  const s = dockfleet.schedule({ name: 'shop_web', image: 'img', placement: { constraints: ['node.runs==shop_db'] } }, hs, [1, 2])
  assert.deepEqual(s.assignments.map((a) => a.host), ['h2', 'h2'])
  assert.match(s.reasons.h0, /no task of shop_db/)
  const away = dockfleet.schedule({ name: 'shop_web', image: 'img', placement: { constraints: ['node.runs!=shop_db'] } }, hs, [1, 2, 3])
  assert.ok(!away.assignments.some((a) => a.host === 'h2'))
})

test('an invalid spec throws invalid_argument naming the field', () => {
  const spec = { name: 'web', image: 'img', volumes: [{ source: '/var/run/docker.sock', target: '/s' }] }
  assert.throws(() => dockfleet.schedule(spec, hosts(), [1]), (e) => e.code === 'invalid_argument' && /volumes\[0\]\.source/.test(e.message))
})

test('a replica count over the limit throws invalid_argument naming replicas', () => {
  const spec = { name: 'web', image: 'img', replicas: 100_000_000 }
  assert.throws(() => dockfleet.schedule(spec, hosts(), [1]), (e) => e.code === 'invalid_argument' && /replicas: .*limit of 1000000/.test(e.message))
})
