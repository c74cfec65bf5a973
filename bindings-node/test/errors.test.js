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

test('a value that is not an object where one is expected, or a key its type lacks, is invalid_argument naming the field', async () => {
  // napi-rs read the fields of whatever it was given: a string passed for the HostConfig connected to
  // the local socket, `env: ['A=1']` set a variable named `0`, a string of labels one label per letter.
  const h = fleet().host('df-1')
  const tag = unique('shape')
  for (const [config, got] of [['tcp://10.250.0.11:2375', 'string'], [undefined, 'undefined'], [null, 'null'], [[], 'array']]) {
    const e = await rejects(dockfleet.DockerHost.connect(config), 'invalid_argument')
    assert.equal(e.message, `expected an object (HostConfig), got ${got}`)
  }
  const labels = { 'dockfleet.test': tag }
  for (const [extra, message] of [
    [{ env: ['A=1'] }, 'expected an object of names to values, got array on ContainerSpec.env'],
    [{ labels: 'a=b' }, 'expected an object of names to values, got string on ContainerSpec.labels'],
    [{ healthcheck: 'true' }, 'expected an object (Healthcheck), got string on ContainerSpec.healthcheck'],
    [{ ports: [8080] }, 'expected an object (PortMapping), got number on ContainerSpec.ports'],
    [{ command: 'sleep 1' }, 'expected an array, got string on ContainerSpec.command'],
    // (`null` is an absent value only where the type allows it: `entrypoint`, not `env`.)
    [{ env: null }, 'expected an object of names to values, got null on ContainerSpec.env'],
  ]) {
    const e = await rejects(h.createContainer({ image: IMAGE, labels, ...extra }), 'invalid_argument')
    assert.equal(e.message, message)
  }
  assert.throws(() => dockfleet.specHash('web'), (e) => e.code === 'invalid_argument' && /got string/.test(e.message))
  // Options passed as an argument, and a record in them, likewise.
  for (const [options, message] of [
    ['a=b', 'expected an object (VolumeOptions), got string'],
    [{ labels: ['a=b'] }, 'expected an object of names to values, got array on VolumeOptions.labels'],
    [{ driverOpts: 'type=tmpfs' }, 'expected an object of names to values, got string on VolumeOptions.driverOpts'],
  ]) {
    const e = await rejects(h.createVolume(tag, options), 'invalid_argument')
    assert.equal(e.message, message)
  }
  assert.deepEqual((await h.listVolumes([])).filter((v) => v.name === tag), [])
  // A key the type does not have is refused (as an unknown keyword is in Python), here or nested: a
  // misspelt option was dropped without a word.
  const address = 'tcp://10.250.0.11:2375'
  const e = await rejects(dockfleet.DockerHost.connect({ name: 'x', address, insecure: true, requestTimeoutMs: 5 }), 'invalid_argument')
  assert.match(e.message, /^unknown field `requestTimeoutMs` on HostConfig \(its fields: name, address, .*requestTimeout\)$/)
  const nested = await rejects(h.createContainer({ image: IMAGE, labels, ports: [{ containerPort: 80, hostport: 8080 }] }), 'invalid_argument')
  assert.match(nested.message, /^unknown field `hostport` on PortMapping .* on ContainerSpec\.ports$/)
  // Absent fields still take their defaults, `null` an optional one's, and an unknown key set to
  // `undefined` (`{ ...options, extra: undefined }`) is as good as absent.
  const id = await h.createContainer({ image: IMAGE, labels, name: null, entrypoint: null, env: undefined, extra: undefined })
  await h.removeContainer(id, true)
  assert.deepEqual(await h.listContainers({ all: true, labels: [`dockfleet.test=${tag}`] }), [])
})

test('references that would address another object are refused and touch nothing', async () => {
  // Unescaped in the engine URL's path, `../containers/NAME` as an image was `DELETE /containers/NAME`.
  const h = fleet().host('df-1')
  const tag = unique('ref')
  const id = await h.createContainer({ image: IMAGE, name: tag, labels: { 'dockfleet.test': tag } })
  try {
    const e = await rejects(h.removeImage(`../containers/${tag}`, true), 'invalid_argument')
    assert.match(e.message, /reference/)
    for (const bad of [`${tag}?force=1`, `../containers/${tag}`, '']) {
      assert.match((await rejects(h.removeContainer(bad, true), 'invalid_argument')).message, /invalid id/)
      await rejects(h.inspectContainer(bad), 'invalid_argument')
    }
    assert.equal((await h.inspectContainer(tag)).id, id)
  } finally {
    await h.removeContainer(id, true)
  }
})

test('bad numbers are invalid_argument naming the field, instead of wrapping or clamping', async () => {
  const spec = (extra) => ({ name: 'web', image: 'img', ...extra })
  const hosts = [{ name: 'h0', available: true, cpus: 2, memoryBytes: 2 ** 30 }]
  const refused = (f, field) => assert.throws(f, (e) => e.code === 'invalid_argument' && e.message.includes(field), field)
  // napi alone took 70000 as 65535 (clamped), -1 as 4294967295 (wrapped), 1.5 as 1, and Infinity ms as "no timeout".
  for (const [extra, field] of [
    [{ ports: [{ target: 70000 }] }, 'ServicePort.target'],
    [{ ports: [{ target: 80, published: 65536 }] }, 'ServicePort.published'],
    [{ replicas: -1 }, 'ServiceSpec.replicas'],
    [{ replicas: 1.5 }, 'ServiceSpec.replicas'],
    [{ replicas: 2 ** 32 + 1 }, 'ServiceSpec.replicas'],
    [{ replicas: '3' }, 'ServiceSpec.replicas'],
    [{ resources: { memoryReservation: -1 } }, 'Resources.memoryReservation'],
    [{ resources: { memoryLimit: 2 ** 53 } }, 'Resources.memoryLimit'],
    [{ stopGracePeriod: -1 }, 'ServiceSpec.stopGracePeriod'],
    [{ stopGracePeriod: NaN }, 'ServiceSpec.stopGracePeriod'],
    [{ updateConfig: { delay: Infinity } }, 'UpdateConfig.delay'],
  ]) {
    refused(() => dockfleet.schedule(spec(extra), hosts, [0]), field)
  }
  refused(() => dockfleet.schedule(spec(), hosts, [0, -1]), 'argument `slots`')
  refused(() => dockfleet.taskContainer(spec(), 0.5), 'argument `slot`')
  refused(() => dockfleet.schedule(spec(), hosts, [0], { seed: NaN }), 'ScheduleOptions.seed')
  refused(() => new dockfleet.Balancer({ failWindow: -5 }), 'BalancerOptions.failWindow')
  refused(() => new dockfleet.Balancer({ maxFails: 2 ** 32 }), 'BalancerOptions.maxFails')
  const b = new dockfleet.Balancer()
  b.setEndpoints([{ id: 'a', address: '127.0.0.1', port: 80 }])
  refused(() => b.setEndpoints([{ id: 'a', address: '127.0.0.1', port: -80 }]), 'Endpoint.port')
  refused(() => b.release('a', true, -1), 'argument `latency`')
  refused(() => new dockfleet.DockerHost({ name: 'x', address: 'tcp://10.250.0.11:2375', insecure: true, requestTimeout: Infinity }), 'HostConfig.requestTimeout')
  // A call that returns a Promise rejects (`rejects` fails on a synchronous throw, which happens first).
  const e = await rejects(dockfleet.DockerHost.connect({ name: 'x', address: 'tcp://10.250.0.11:2375', insecure: true, connectTimeout: -1 }), 'invalid_argument')
  assert.match(e.message, /HostConfig\.connectTimeout/)
  assert.deepEqual(b.stats().map((s) => [s.endpoint.port, s.requests]), [[80, 0]], 'the refused calls changed nothing')
  // The edges of each range are accepted, and come back as they went in.
  const edge = spec({ replicas: 0, ports: [{ target: 65535, published: 0 }], resources: { memoryLimit: 2 ** 53 - 1 }, stopGracePeriod: 0 })
  const c = dockfleet.taskContainer(edge, 4294967295)
  assert.equal(c.ports[0].containerPort, 65535)
  assert.equal(c.memoryBytes, 2 ** 53 - 1)
  assert.equal(c.stopTimeout, 0)
})

test('a bad number on an engine call creates nothing and stops nothing', async () => {
  const h = fleet().host('df-1')
  const tag = unique('num')
  const labels = { 'dockfleet.test': tag }
  assert.match((await rejects(h.createContainer({ image: IMAGE, ports: [{ containerPort: 70000 }], labels }), 'invalid_argument')).message, /PortMapping\.containerPort/)
  assert.match((await rejects(h.createContainer({ image: IMAGE, memoryBytes: -1, labels }), 'invalid_argument')).message, /ContainerSpec\.memoryBytes/)
  assert.deepEqual(await h.listContainers({ all: true, labels: [`dockfleet.test=${tag}`] }), [])
  const id = await h.createContainer({ image: IMAGE, command: ['sleep', '30'], labels })
  try {
    await h.startContainer(id)
    assert.match((await rejects(h.stopContainer(id, -1), 'invalid_argument')).message, /argument `grace`/)
    assert.equal((await h.inspectContainer(id)).state.running, true)
  } finally {
    await h.removeContainer(id, true)
  }
})

test('every function of the binding can be wrapped by dockfleet.js', () => {
  // A non-writable one (napi's default for a static method) would escape dockfleet.js's codes.
  const native = require('../index.js')
  const fixed = []
  for (const [name, v] of Object.entries(native)) {
    if (typeof v !== 'function') continue
    for (const [where, target] of [[`${name}.`, v], [`${name}.prototype.`, v.prototype || {}]]) {
      for (const key of Object.getOwnPropertyNames(target)) {
        const d = Object.getOwnPropertyDescriptor(target, key)
        if (key !== 'constructor' && typeof d.value === 'function' && !d.writable) fixed.push(where + key)
      }
    }
  }
  assert.deepEqual(fixed, [])
})

test('a call that returns a Promise rejects on a bad argument, and never throws', async () => {
  // napi converts arguments before the call starts, and throws when it cannot; dockfleet.js turns that
  // throw into the rejection a Promise-returning function should give.
  const h = fleet().host('df-1')
  for (const [what, call] of [
    ['an instance method', () => h.inspectContainer(42)],
    ['a static factory', () => dockfleet.DockerHost.connect({ name: 1, address: 'unix:///nowhere' })],
    ['a function', () => dockfleet.scale(fleet(), 'web', -1)],
    ['a function with a class argument', () => dockfleet.Proxy.start(null, { routes: [] })],
  ]) {
    const p = call()
    assert.ok(p instanceof Promise, what)
    await rejects(p, 'invalid_argument')
  }
  // A synchronous call still throws.
  assert.throws(() => dockfleet.specHash({ name: 1, image: 'img' }), (e) => e.code === 'invalid_argument')
  assert.throws(() => new dockfleet.Balancer().release('a', true, -1), (e) => e.code === 'invalid_argument')
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

test('a Rust panic in a synchronous call throws code internal and the process lives on', () => {
  // Without napi's catch_unwind the panic would unwind into C and abort Node.
  assert.throws(() => dockfleet._panicNowForTests('js-sync panic'), (e) => e.code === 'internal' && /js-sync panic/.test(e.message))
  assert.equal(dockfleet.specHash({ name: 'web', image: 'img' }).length > 0, true)
})

test('a Rust panic rejects with code internal and the process lives on', async () => {
  const e = await rejects(dockfleet._panicForTests('js-test panic'), 'internal')
  assert.match(e.message, /js-test panic/)
  const u = await dockfleet.DockerHost.connect({ name: 'u', address: 'unix:///run/dockfleet-testbed/df-1.sock' })
  assert.ok((await u.ping()).latency > 0)
})
