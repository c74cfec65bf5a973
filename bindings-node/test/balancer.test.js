// Load-balancing strategies from Node (pure logic: no engine).
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet } = require('./helpers.js')

const endpoints = (n) => Array.from({ length: n }, (_, i) => ({ id: `e${i}`, address: '10.0.0.1', port: 8000 + i }))

test('strategies, ejection and errors', () => {
  const rr = new dockfleet.Balancer({ strategy: 'round-robin' })
  rr.setEndpoints(endpoints(3))
  assert.deepEqual([0, 1, 2, 3].map(() => rr.pick().id), ['e0', 'e1', 'e2', 'e0'])
  const lc = new dockfleet.Balancer({ strategy: 'least-connections' })
  lc.setEndpoints(endpoints(2))
  const first = lc.pick()
  assert.notEqual(lc.pick().id, first.id, 'the busy one is avoided')
  const ej = new dockfleet.Balancer({ maxFails: 2, failWindow: 10000, ejection: 60000 })
  ej.setEndpoints(endpoints(2))
  ej.release('e0', false, 5)
  ej.release('e0', false, 5)
  assert.deepEqual(new Set([0, 1, 2].map(() => ej.pick().id)), new Set(['e1']))
  const e0 = ej.stats().find((s) => s.endpoint.id === 'e0')
  assert.equal(e0.ejected, true)
  assert.equal(e0.failures, 2)
  assert.equal(new dockfleet.Balancer().pick(), null)
  assert.throws(() => new dockfleet.Balancer({ strategy: 'fastest' }), (e) => e.code === 'invalid_argument' && /strategy/.test(e.message))
})

test('an ejection as long as a number allows ejects without a panic', () => {
  // 1e22 ms is past the clock's range: `Instant + Duration` panicked.
  const b = new dockfleet.Balancer({ maxFails: 1, failWindow: 1e22, ejection: 1e22 })
  b.setEndpoints(endpoints(2))
  b.release('e0', false, 5)
  assert.deepEqual(new Set([0, 1, 2].map(() => b.pick().id)), new Set(['e1']))
  assert.deepEqual(b.stats().map((s) => [s.endpoint.id, s.ejected]), [['e0', true], ['e1', false]])
})
