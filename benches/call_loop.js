// One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
// makes 100 unreported calls, then N more, awaited: `ping`, or `inspectContainer(ID)` when a container
// ID is given.
//   node benches/call_loop.js ADDRESS N [CONTAINER_ID]
const path = require('node:path')
const dockfleet = require(path.join(__dirname, '..', 'bindings-node', 'dockfleet.js'))

async function main () {
  const [address, n, id] = [process.argv[2], Number(process.argv[3]), process.argv[4]]
  const host = await dockfleet.DockerHost.connect({ name: 'call-loop', address, insecure: true })
  const call = id ? () => host.inspectContainer(id) : () => host.ping()
  for (let i = 0; i < 100 + n; i++) await call()
}

main().catch((e) => { console.error(e); process.exit(1) })
