// Bad input and faults from Node: `.code` on every error, the cause chain, nothing left behind.
const test = require('node:test')
const assert = require('node:assert/strict')
const { dockfleet, fleet, unique, cert, testbed, rejects, IMAGE } = require('./helpers.js')

test('error codes are the core codes', () => {
  assert.deepEqual(dockfleet.errorCodes().slice(0, 3), ['invalid_argument', 'invalid_address', 'insecure'])
})

test('malformed addresses and insecure TCP throw with codes', () => {
  for (const [address, code] of [
    ['10.250.0.11:2375', 'invalid_address'],
    ['tcp://10.250.0.11:x', 'invalid_address'],
    ['tcp://10.250.0.11:2375', 'insecure'],
  ]) {
    assert.throws(() => new dockfleet.DockerHost({ name: 'bad', address }), (e) => e.code === code && /address/.test(e.message))
  }
  assert.throws(() => dockfleet.Fleet.parse('[[hosts]]\nname = "a"\naddress = "x"\n', 'toml'), (e) => e.code === 'invalid_address' && /hosts\[0\]\.address/.test(e.message))
})

test('invalid specs and missing images create nothing', async () => {
  const h = fleet().host('df-1')
  const tag = unique('bad')
  await rejects(h.createContainer({ image: 'dockfleet/nope:never', labels: { 'dockfleet.test': tag } }), 'not_found')
  const e = await rejects(h.createContainer({ image: IMAGE, ports: [{ containerPort: 0 }], labels: { 'dockfleet.test': tag } }), 'invalid_argument')
  assert.match(e.message, /ports\[0\]\.container_port/)
  assert.deepEqual(await h.listContainers({ all: true, labels: [`dockfleet.test=${tag}`] }), [])
})

test('TLS faults reject with code tls', async () => {
  const tlsHost = (ca, crt, key) =>
    new dockfleet.DockerHost({ name: 't', address: 'tcp://10.250.0.60:2376', tls: { ca: cert(ca), cert: cert(crt), key: cert(key) } })
  await tlsHost('ca.pem', 'client-cert.pem', 'client-key.pem').ping()
  await rejects(tlsHost('other-ca.pem', 'client-cert.pem', 'client-key.pem').ping(), 'tls')
  await rejects(tlsHost('ca.pem', 'other-client-cert.pem', 'other-client-key.pem').ping(), 'tls')
  await rejects(new dockfleet.DockerHost({ name: 'p', address: 'tcp://10.250.0.60:2376', insecure: true }).ping(), 'tls')
})

test('a connect that outlives connectTimeout is a timeout', async () => {
  // An address on the testbed bridge that no namespace holds: the connect never completes.
  const h = new dockfleet.DockerHost({ name: 'void', address: 'tcp://10.250.0.99:2375', insecure: true, connectTimeout: 300 })
  const e = await rejects(h.ping(), 'timeout')
  assert.match(e.message, /void.*300ms/)
})

test('engine stopped: code, host name and cause chain', async () => {
  const h = fleet().host('df-3')
  await h.ping()
  testbed('stop-engine', 'df-3')
  try {
    const e = await rejects(h.ping(), 'engine_unreachable')
    assert.match(e.message, /df-3/)
    assert.ok(e.cause instanceof Error, 'the cause chain is kept')
  } finally {
    testbed('start-engine', 'df-3')
  }
  await h.ping()
})

test('a Rust panic rejects with code internal and the process lives on', async () => {
  const e = await rejects(dockfleet._panicForTests('js-test panic'), 'internal')
  assert.match(e.message, /js-test panic/)
  const u = await dockfleet.DockerHost.connect({ name: 'u', address: 'unix:///run/dockfleet-testbed/df-1.sock' })
  assert.ok((await u.ping()).latency > 0)
})
