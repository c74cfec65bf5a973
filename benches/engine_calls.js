// Engine-call benchmark, Node side: dockfleet's Node binding and dockerode, N sequential calls per op
// and round. Prints one JSON line per (client, op, round).
// Usage: node engine_calls.js ADDRESS CONTAINER_ID [CALLS] [ROUNDS] [WARM_UP]
const path = require('node:path')
const dockfleet = require(path.join(__dirname, '..', 'bindings-node', 'dockfleet.js'))
const Docker = require('dockerode')

const [address, id, callsArg, roundsArg, warmUpArg] = process.argv.slice(2)
const calls = Number(callsArg || 1000)
const rounds = Number(roundsArg || 5)
const warmUp = Number(warmUpArg || 100) // unreported calls of each operation per client before the rounds
const report = (client, op, round, seconds) => console.log(JSON.stringify({ client, op, round, calls, seconds }))

async function timed(client, op, round, fn) {
  const t = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) await fn()
  report(client, op, round, Number(process.hrtime.bigint() - t) / 1e9)
}

async function main() {
  const host = await dockfleet.DockerHost.connect({ name: 'bench', address, insecure: true })
  const [h, p] = address.replace('tcp://', '').split(':')
  const dockerode = new Docker({ host: h, port: Number(p) })
  const container = dockerode.getContainer(id)
  // Warm-up, not reported (as on the Rust and Python sides): a process's first calls would otherwise
  // land on whichever client is measured first.
  for (let i = 0; i < warmUp; i++) {
    await host.ping()
    await host.listContainers()
    await host.inspectContainer(id)
    await dockerode.ping()
    await dockerode.listContainers()
    await container.inspect()
  }
  for (let round = 0; round < rounds; round++) {
    await timed('dockfleet-node', 'ping', round, () => host.ping())
    await timed('dockfleet-node', 'list', round, () => host.listContainers())
    await timed('dockfleet-node', 'inspect', round, () => host.inspectContainer(id))
    await timed('dockerode', 'ping', round, () => dockerode.ping())
    await timed('dockerode', 'list', round, () => dockerode.listContainers())
    await timed('dockerode', 'inspect', round, () => container.inspect())
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
