// The built-in proxy and the config renderers from Node, against real HTTP servers on loopback.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { dockfleet } = require('./helpers.js')

function backend(name) {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end(`${name} xff=${req.headers['x-forwarded-for']}`))
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

function get(address) {
  return new Promise((resolve, reject) => {
    http.get(`http://${address}/`, { agent: false }, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, body }))
    }).on('error', reject)
  })
}

test('the proxy balances, follows discovery and counts', async () => {
  const [a, b] = await Promise.all([backend('a'), backend('b')])
  const d = dockfleet.Discovery.embedded()
  await d.register({ service: 'web', id: 'a', address: '127.0.0.1', port: a.address().port })
  const proxy = await dockfleet.Proxy.start(d, { routes: [{ service: 'web' }] })
  await proxy.waitReady(5000)
  const first = await get(proxy.address())
  assert.equal(first.status, 200)
  assert.match(first.body, /^a xff=127\.0\.0\.1/)
  await d.register({ service: 'web', id: 'b', address: '127.0.0.1', port: b.address().port })
  for (let i = 0; i < 100 && proxy.stats().length < 2; i++) await new Promise((r) => setTimeout(r, 20))
  const names = new Set()
  for (let i = 0; i < 6; i++) names.add((await get(proxy.address())).body[0])
  assert.deepEqual(names, new Set(['a', 'b']))
  const sa = proxy.stats().find((s) => s.endpoint.id === 'a')
  assert.ok(sa.requests >= 2 && sa.errors === 0)
  assert.equal(sa.latencyCounts.length, dockfleet.LATENCY_BOUNDS_MS.length + 1)
  await proxy.shutdown(1000)
  await assert.rejects(dockfleet.Proxy.start(d, { routes: [{ service: 'web', pathPrefix: 'api' }] }),
    (e) => e.code === 'invalid_argument' && /routes\[0\]\.path_prefix/.test(e.message))
  a.close()
  b.close()
})

test('render and sync configurations', async () => {
  const instances = [0, 1].map((i) => ({ service: 'web', id: `w${i}`, address: '127.0.0.1', port: 8000 + i }))
  const text = dockfleet.renderConfig({ kind: 'haproxy', routes: [{ service: 'web' }], listen: '127.0.0.1:9999' }, instances)
  assert.match(text, /server w1 127\.0\.0\.1:8001 weight 1/)
  assert.match(dockfleet.defaultTemplate('nginx', 'tcp'), /proxy_pass/)
  assert.throws(() => dockfleet.renderConfig({ kind: 'envoy', routes: [{ service: 'web' }] }, instances), (e) => e.code === 'invalid_argument')
  // Nothing reaches the configuration that would change it beyond its values.
  assert.throws(() => dockfleet.renderConfig({ routes: [{ service: 'web', pathPrefix: '/a;\n}' }] }, instances),
    (e) => e.code === 'invalid_argument' && /routes\[0\]\.path_prefix/.test(e.message))
  const bad = { service: 'web', id: 'w9', address: '127.0.0.1;\n}', port: 8009 }
  assert.throws(() => dockfleet.renderConfig({ routes: [{ service: 'web' }] }, [...instances, bad]),
    (e) => e.code === 'invalid_argument' && new RegExp(`instances\\[${instances.length}\\]\\.address`).test(e.message))
  const d = dockfleet.Discovery.embedded()
  for (const i of instances) await d.register(i)
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-')), 'web.conf')
  const events = dockfleet.syncConfig(d, { routes: [{ service: 'web' }], path: file, debounce: 50 })
  const it = events[Symbol.asyncIterator]()
  const first = (await it.next()).value
  assert.equal(first.kind, 'written')
  assert.equal(first.servers, 2)
  assert.match(fs.readFileSync(file, 'utf8'), /server 127\.0\.0\.1:8000/)
  await d.register({ ...instances[0], tags: ['x'] })
  assert.equal((await it.next()).value.kind, 'unchanged')
  await it.return()
})
