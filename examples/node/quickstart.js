// The README's Node snippet: connect to one engine, run a container, read its output.
// Run: node examples/node/quickstart.js  (testbed host df-1 by default, or DOCKFLEET_EXAMPLE_HOST).
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const address = process.env.DOCKFLEET_EXAMPLE_HOST || 'tcp://10.250.0.11:2375'

// README-SNIPPET-START
async function main() {
  const host = await dockfleet.DockerHost.connect({ name: 'df-1', address, insecure: true })
  const info = await host.info()
  console.log(`${host.name} runs Docker ${info.engineVersion} with ${info.cpus} CPUs`)

  const id = await host.createContainer({ image: 'dockfleet/busybox:latest', command: ['echo', 'hello from dockfleet'] })
  await host.startContainer(id)
  const code = await host.waitContainer(id)
  let output = ''
  for await (const line of host.logs(id)) output += line.message
  console.log(`exit ${code}: ${output.trim()}`)
  await host.removeContainer(id, true)
}

main().catch((err) => {
  console.error(`${err.code}: ${err.message}`)
  process.exit(1)
})
// README-SNIPPET-END
