// The README's Swarm example in Node: the same compose stack deployed with dockfleet's own scheduler on
// the fleet's plain engines, then on Docker Swarm mode formed from the same engines. Only the line that
// picks the backend differs; `deploy` is the same code for both.
//
// Run: node examples/node/swarm.js  (the testbed's inventory, or DOCKFLEET_INVENTORY; df-1 becomes the
// swarm's manager and df-2, df-3 its workers; the swarm is dissolved at the end).
const path = require('node:path')
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const inventory = process.env.DOCKFLEET_INVENTORY || '/var/lib/dockfleet-testbed/fleet.toml'
const compose = path.join(__dirname, '..', 'stack', 'compose.yaml')

// README-SNIPPET-START
// Up, ps, down: the same calls whatever the backend (a Fleet or a Swarm).
async function deploy(backend, stack) {
  const kind = backend.constructor.name.toLowerCase()
  let last
  for await (const e of dockfleet.stackUp(backend, stack)) last = e
  console.log(`[${kind}] ${last.message}`)
  for (const service of await dockfleet.stackPs(backend, stack.name)) {
    const placed = service.tasks.map((t) => `${t.host}#${t.slot}`).join(' ')
    console.log(`[${kind}] ${service.name} ${service.running}/${service.desired} on ${placed}`)
  }
  const down = await dockfleet.stackDown(backend, stack.name, true)
  console.log(`[${kind}] removed ${down.containers} tasks`)
}

async function main() {
  const fleet = dockfleet.Fleet.fromFile(inventory)
  const stack = dockfleet.loadCompose('shop-js', compose)
  await deploy(fleet, stack) // dockfleet's own scheduler on plain engines

  const swarm = await dockfleet.Swarm.init(fleet, 'df-1') // …or Docker Swarm mode on the same engines
  try {
    for (const host of ['df-2', 'df-3']) await swarm.join(host, 'worker')
    await deploy(swarm, stack) // the one line that changed
  } finally {
    await swarm.dissolve()
  }
}

main().catch((err) => {
  console.error(`${err.code}: ${err.message}`)
  process.exit(1)
})
// README-SNIPPET-END
