// The README's stack example in Node: deploy a compose stack across the fleet, show where its tasks run,
// roll an update of the web tier, and take the stack down.
//
// Run: node examples/node/stack.js  (the testbed's inventory, or DOCKFLEET_INVENTORY).
const path = require('node:path')
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const inventory = process.env.DOCKFLEET_INVENTORY || '/var/lib/dockfleet-testbed/fleet.toml'
const compose = path.join(__dirname, '..', 'stack', 'compose.yaml')

// README-SNIPPET-START
async function main() {
  const fleet = dockfleet.Fleet.fromFile(inventory)
  const stack = dockfleet.loadCompose('shop-js', compose)
  for await (const e of dockfleet.stackUp(fleet, stack)) {
    if (e.phase === 'stack' || e.kind === 'started') console.log(`${e.service}: ${e.kind} ${e.message}`)
  }
  for (const service of await dockfleet.stackPs(fleet, 'shop-js')) {
    const placed = service.tasks.map((t) => `${t.host}#${t.slot}`).join(' ')
    console.log(`${service.name} ${service.running}/${service.desired} on ${placed}`)
  }

  const web = stack.services.find((s) => s.name === 'web').spec
  for await (const e of dockfleet.rollout(fleet, { ...web, env: { ...web.env, VERSION: '2' } })) {
    if (['task-updated', 'task-failed', 'completed'].includes(e.kind)) console.log(`${e.kind} ${e.done}/${e.total} ${e.host} ${e.message}`)
  }
  const down = await dockfleet.stackDown(fleet, 'shop-js', true)
  console.log(`removed ${down.containers} containers`)
}

main().catch((err) => {
  console.error(`${err.code}: ${err.message}`)
  process.exit(1)
})
// README-SNIPPET-END
