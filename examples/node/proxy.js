// The README's proxy example in Node: deploy a service, register its tasks, put the built-in proxy in
// front, see different replicas answer, render the same routes as an nginx configuration, kill a replica
// and keep answering.
//
// Run: node examples/node/proxy.js  (the testbed's inventory, or DOCKFLEET_INVENTORY).
const http = require('node:http')
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const inventory = process.env.DOCKFLEET_INVENTORY || '/var/lib/dockfleet-testbed/fleet.toml'
const spec = {
  name: 'whoami-js', image: 'dockfleet/busybox:latest',
  command: ['sh', '-c', 'hostname > /www/index.html; exec httpd -f -p 80 -h /www'],
  replicas: 3, stopGracePeriod: 1000, ports: [{ target: 80, published: 0 }],
}

// One GET through the proxy; the body (a replica's host name).
const get = (address) => new Promise((resolve) => {
  http.get(`http://${address}/`, { agent: false }, (res) => {
    let body = ''
    res.on('data', (c) => (body += c))
    res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : ''))
  }).on('error', () => resolve(''))
})

// README-SNIPPET-START
async function main() {
  const fleet = dockfleet.Fleet.fromFile(inventory)
  await dockfleet.deploy(fleet, spec)
  const registry = dockfleet.Discovery.embedded()
  const registrator = dockfleet.registrator(fleet, registry)
  const pump = (async () => { for await (const _ of registrator); })()
  const routes = [{ service: 'whoami-js' }]
  const proxy = await dockfleet.Proxy.start(registry, { routes })
  await proxy.waitReady(30000)
  while ((await registry.lookup('whoami-js')).length < 3) await new Promise((r) => setTimeout(r, 100))
  for (let i = 0; i < 6; i++) console.log('answered by', await get(proxy.address()))
  // The same routes as an nginx configuration (syncConfig keeps one up to date, checked and reloaded).
  const instances = await registry.lookup('whoami-js')
  const nginx = dockfleet.renderConfig({ routes }, instances)
  console.log(nginx.split('\n').filter((l) => l.includes('server 10.')).join('\n'))

  const victim = instances[0]
  await fleet.host(victim.metadata.host).killContainer(victim.metadata.container)
  let answered = 0
  for (let i = 0; i < 20; i++) if (await get(proxy.address())) answered++
  console.log(`after killing one replica: ${answered} of 20 requests answered`)
  for (const s of proxy.stats()) console.log(s.endpoint.id, s.draining ? '(draining)' : '', `${s.requests} requests, ${s.errors} errors`)
  await proxy.shutdown(5000)
  await registrator.close()
  await pump
  await dockfleet.removeService(fleet, 'whoami-js')
}

main().catch((err) => {
  console.error(`${err.code}: ${err.message}`)
  process.exit(1)
})
// README-SNIPPET-END
