// One client's engine calls and nothing else, for `benches/run_instructions.sh`: connects to ADDRESS,
// makes 100 unreported pings, then N more, awaited.
//   node benches/ping_loop.js ADDRESS N
const path = require('node:path')
const dockfleet = require(path.join(__dirname, '..', 'bindings-node', 'dockfleet.js'))

async function main () {
  const [address, n] = [process.argv[2], Number(process.argv[3])]
  const host = await dockfleet.DockerHost.connect({ name: 'ping-loop', address, insecure: true })
  for (let i = 0; i < 100 + n; i++) await host.ping()
}

main().catch((e) => { console.error(e); process.exit(1) })
