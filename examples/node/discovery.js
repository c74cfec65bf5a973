// The README's discovery example in Node: deploy a service, let the registrator register its tasks,
// print the live instances, kill one and watch it leave the registry.
//
// Run: node examples/node/discovery.js  (the testbed's inventory, or DOCKFLEET_INVENTORY).
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const inventory = process.env.DOCKFLEET_INVENTORY || '/var/lib/dockfleet-testbed/fleet.toml'
const spec = {
  name: 'hello-js', image: 'dockfleet/busybox:latest', command: ['httpd', '-f', '-p', '80', '-h', '/www'],
  replicas: 3, stopGracePeriod: 1000, ports: [{ target: 80, published: 0 }],
}

// README-SNIPPET-START
async function main() {
  const fleet = dockfleet.Fleet.fromFile(inventory)
  await dockfleet.deploy(fleet, spec)
  const registry = dockfleet.Discovery.embedded()
  const registrator = dockfleet.registrator(fleet, registry)
  const pump = (async () => { for await (const _ of registrator); })()
  // Anything can register, not only containers: a database outside the fleet, say.
  await registry.register({ service: 'legacy-db', id: 'db-1', address: '10.250.0.11', port: 5432 })
  const [db] = await registry.lookup('legacy-db')
  console.log(`legacy-db at ${db.address}:${db.port}`)

  const watch = registry.watch('hello-js')[Symbol.asyncIterator]()
  let live = []
  while (live.length < 3) {
    const { value: event } = await watch.next()
    console.log(event.kind, event.instances.map((i) => i.id))
    live = await registry.lookup('hello-js')
  }
  for (const i of live) console.log(`hello-js at ${i.address}:${i.port} (slot ${i.metadata.slot} on ${i.metadata.host})`)
  const victim = live[0]
  await fleet.host(victim.metadata.host).killContainer(victim.metadata.container)
  for (;;) {
    const { value: event } = await watch.next()
    if (event.kind === 'remove') {
      console.log(`removed ${event.instances[0].id} (killed on ${victim.metadata.host})`)
      break
    }
  }
  await watch.return()
  await registrator.close()
  await pump
  await dockfleet.removeService(fleet, 'hello-js')
}

main().catch((err) => {
  console.error(`${err.code}: ${err.message}`)
  process.exit(1)
})
// README-SNIPPET-END
