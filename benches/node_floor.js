// What Node itself takes per awaited call that an I/O callback completes, with no dockfleet work: the
// counterpart of asyncio_floor.py. A loop awaits the binding's `_ioFloor()`, a Promise that a native
// `uv_poll` callback resolves once the byte it wrote to one end of a socket pair can be read at the
// other: the path an engine call's completion takes (a readable descriptor, a libuv callback, a Promise
// settled in a callback scope, the awaiting code resumed), without the runtime's tick and the call's own
// work. (Until 2026-12-06 this awaited a `net.Socket`'s data event, whose stream machinery executes
// more per read than a whole dockfleet-node ping.) Prints the median over rounds, in µs, as one JSON line.
//
//   node benches/node_floor.js [AWAITS] [ROUNDS]
const path = require('node:path')
const dockfleet = require(path.join(__dirname, '..', 'bindings-node', 'dockfleet.js'))

const awaits = Number(process.argv[2] || 20000)
const rounds = Number(process.argv[3] || 5)

async function main() {
  for (let i = 0; i < 1000; i++) await dockfleet._ioFloor()
  const perAwait = []
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < awaits; i++) await dockfleet._ioFloor()
    perAwait.push(Number(process.hrtime.bigint() - t) / 1e3 / awaits)
  }
  perAwait.sort((x, y) => x - y)
  console.log(JSON.stringify({ client: 'node alone', us_per_await: perAwait[Math.floor(perAwait.length / 2)] }))
}

main()
