// Engine-call benchmark, Node side: dockfleet's Node binding and dockerode, as a worker that
// benches/engine_calls_report.py drives in lockstep with the Rust and Python workers.
// Protocol: prints {"clients": [...]} once connected, then reads lines CLIENT<TAB>OP<TAB>CALLS (OP is
// ping, list or inspect) and answers each with one JSON line after making CALLS sequential calls:
// {"client", "op", "calls", "seconds"}. Ends at end of input.
// Usage: node engine_calls.js ADDRESS CONTAINER_ID
const path = require('node:path')
const readline = require('node:readline')
const dockfleet = require(path.join(__dirname, '..', 'bindings-node', 'dockfleet.js'))
const Docker = require('dockerode')

async function main () {
  const [address, id] = process.argv.slice(2)
  const host = await dockfleet.DockerHost.connect({ name: 'bench', address, insecure: true })
  const [h, p] = address.replace('tcp://', '').split(':')
  const dockerode = new Docker({ host: h, port: Number(p) })
  const container = dockerode.getContainer(id)
  const ops = {
    'dockfleet-node': { ping: () => host.ping(), list: () => host.listContainers(), inspect: () => host.inspectContainer(id) },
    dockerode: { ping: () => dockerode.ping(), list: () => dockerode.listContainers(), inspect: () => container.inspect() }
  }
  console.log(JSON.stringify({ clients: Object.keys(ops) }))
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const [client, op, n] = line.split('\t')
    const fn = ops[client][op]
    const calls = Number(n)
    const t = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) await fn()
    console.log(JSON.stringify({ client, op, calls, seconds: Number(process.hrtime.bigint() - t) / 1e9 }))
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
