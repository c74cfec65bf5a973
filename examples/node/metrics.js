// A Prometheus scrape endpoint for services on the whole fleet: every GET /metrics samples each running
// task of the named services on all their hosts at once and answers with the Prometheus text
// (`dockfleet_task_cpu_percent{service=...,host=...,slot=...}` and the rest), what cAdvisor serves for
// one host. Point a Prometheus `scrape_configs` job at it.
//
// Run: node examples/node/metrics.js SERVICE [SERVICE ...]
//      (the testbed's inventory, or DOCKFLEET_INVENTORY; port 9464, or DOCKFLEET_METRICS_PORT; 0 picks one)
const http = require('node:http')
const dockfleet = require(process.env.DOCKFLEET_NODE_PACKAGE || 'dockfleet')

const inventory = process.env.DOCKFLEET_INVENTORY || '/var/lib/dockfleet-testbed/fleet.toml'
const port = Number(process.env.DOCKFLEET_METRICS_PORT ?? 9464)
const services = process.argv.slice(2)
if (services.length === 0) {
  console.error('usage: node examples/node/metrics.js SERVICE [SERVICE ...]')
  process.exit(2)
}

const fleet = dockfleet.Fleet.fromFile(inventory)
const server = http.createServer(async (req, res) => {
  if (req.method !== 'GET' || req.url !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('try /metrics\n')
    return
  }
  try {
    const sampled = await Promise.all(services.map((s) => dockfleet.serviceStats(fleet, s)))
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }).end(dockfleet.prometheusText(sampled.flat()))
  } catch (err) {
    res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.code}: ${err.message}\n`)
  }
})
server.listen(port, '127.0.0.1', () => {
  console.log(`serving http://127.0.0.1:${server.address().port}/metrics for ${services.join(', ')}`)
})
