// What Node alone costs per awaited call that an I/O callback completes, with no dockfleet and no engine:
// the counterpart of asyncio_floor.py. A loop awaits a Promise that a socket's data callback resolves
// (one byte written over a loopback connection, one read), then goes on. Prints the median over rounds,
// in µs, as one JSON line.
//
//   node benches/node_floor.js [AWAITS] [ROUNDS]
const net = require('node:net')

const awaits = Number(process.argv[2] || 20000)
const rounds = Number(process.argv[3] || 5)

async function main() {
  const server = net.createServer()
  const accepted = new Promise((resolve) => server.once('connection', resolve))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = net.connect(server.address().port, '127.0.0.1')
  a.setNoDelay(true)
  const b = await accepted
  b.setNoDelay(true)
  const waiting = []
  b.on('data', (chunk) => {
    for (let i = 0; i < chunk.length; i++) waiting.shift()()
  })
  const perAwait = []
  for (let r = 0; r < rounds; r++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < awaits; i++) {
      const done = new Promise((resolve) => waiting.push(resolve))
      a.write('x')
      await done
    }
    perAwait.push(Number(process.hrtime.bigint() - t) / 1e3 / awaits)
  }
  a.destroy()
  b.destroy()
  server.close()
  perAwait.sort((x, y) => x - y)
  console.log(JSON.stringify({ client: 'node alone', us_per_await: perAwait[Math.floor(perAwait.length / 2)] }))
}

main()
