// Deploying a service from Node onto the testbed's engines.
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet, fleet, unique, IMAGE } = require('./helpers.js')

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

test('a host-root bind is refused before anything is created', async () => {
  const f = plainFleet()
  const spec = { name: unique('jsbad').replaceAll('-', '_'), image: IMAGE, volumes: [{ source: '/', target: '/host' }] }
  await assert.rejects(dockfleet.deploy(f, spec), (e) => e.code === 'invalid_argument' && /volumes\[0\]\.source/.test(e.message))
  assert.deepEqual((await dockfleet.observe(f, spec.name)).tasks, [])
})
