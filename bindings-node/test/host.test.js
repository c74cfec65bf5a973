// The Node binding against the testbed's real engines.
const test = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { dockfleet, fleet, unique, cert, rejects, registry, IMAGE } = require('./helpers.js')

function httpGet(host, port) {
  return new Promise((resolve, reject) => {
    let tries = 0
    const attempt = () => {
      const s = net.connect(port, host)
      let data = ''
      s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'))
      s.on('data', (d) => (data += d))
      s.on('end', () => resolve(data))
      s.on('error', (e) => (++tries < 50 ? setTimeout(attempt, 100) : reject(e)))
    }
    attempt()
  })
}

test('every testbed host answers with its facts', async () => {
  const f = fleet()
  assert.deepEqual(f.names(), ['df-1', 'df-2', 'df-3', 'df-tls'])
  assert.equal(f.length, 4)
  for (const h of f.hosts()) {
    const ping = await h.ping()
    assert.ok(ping.apiVersion.startsWith('1.') && ping.latency > 0)
    const info = await h.info()
    assert.ok(info.cpus >= 1 && info.memoryBytes > 0 && info.runtimes.includes('runc'))
    for (const [k, v] of Object.entries(h.labels)) assert.equal(info.labels[k], v)
  }
  assert.deepEqual(f.select(['role=manager']).map((h) => h.name), ['df-1'])
})

test('unix socket and TLS from the environment', async () => {
  const u = await dockfleet.DockerHost.connect({ name: 'u', address: 'unix:///run/dockfleet-testbed/df-1.sock' })
  assert.equal((await u.info()).labels.role, 'manager')
  process.env.DOCKER_HOST = 'tcp://10.250.0.60:2376'
  process.env.DOCKER_TLS_VERIFY = '1'
  process.env.DOCKER_CERT_PATH = cert('client')
  try {
    const t = await dockfleet.DockerHost.fromEnv('env')
    assert.equal((await t.info()).labels.tls, 'true')
  } finally {
    delete process.env.DOCKER_HOST
    delete process.env.DOCKER_TLS_VERIFY
    delete process.env.DOCKER_CERT_PATH
  }
})

test('container lifecycle end to end', async () => {
  const h = fleet().host('df-2')
  const tag = unique('life')
  const id = await h.createContainer({
    name: tag,
    image: IMAGE,
    command: ['sh', '-c', 'echo hello-$GREETING; exec httpd -f -p 80 -h /www'],
    env: { GREETING: 'js' },
    labels: { 'dockfleet.test': tag },
    ports: [{ containerPort: 80, hostPort: 0 }],
    healthcheck: { test: ['CMD-SHELL', 'true'], interval: 500, retries: 1 },
    memoryBytes: 64 * 1024 * 1024,
    mounts: [
      { source: '/run/netns', target: '/netns', readOnly: true, propagation: 'rslave' },
      { source: `${tag}-data`, target: '/data', noCopy: true },
    ],
  })
  await h.startContainer(id)
  const d = await h.inspectContainer(id)
  assert.ok(d.state.running)
  // Plain objects, every field present in declaration order (what index.d.ts declares).
  assert.deepEqual(Object.keys(d), ['id', 'name', 'image', 'imageId', 'state', 'labels', 'ports', 'networks', 'restartCount', 'created', 'privileged', 'securityOpt', 'networkMode', 'exposedPorts'])
  assert.deepEqual(Object.keys(d.ports[0]), ['containerPort', 'hostPort', 'protocol', 'hostIp'])
  assert.equal(Object.getPrototypeOf(d.state), Object.prototype)
  assert.equal(d.name, tag)
  const port = d.ports.find((p) => p.containerPort === 80).hostPort
  assert.match(await httpGet('10.250.0.12', port), /ok\n$/)
  const listed = await h.listContainers({ all: true, labels: [`dockfleet.test=${tag}`] })
  assert.deepEqual(listed.map((c) => c.id), [id])
  // Off the host network too, the exposed ports are the ports the container asked for, unbound.
  assert.equal(listed[0].networkMode, 'default')
  assert.equal(d.networkMode, 'default')
  assert.deepEqual(d.exposedPorts, [{ containerPort: 80, hostPort: null, protocol: 'tcp', hostIp: null }])
  let out = ''
  for await (const line of h.logs(id)) out += line.message
  assert.match(out, /hello-js/)
  // The testbed's /run/netns is a shared mount: an rslave bind follows it as a slave.
  const mountinfo = (await h.exec(id, ['grep', ' /netns ', '/proc/self/mountinfo'])).stdout
  assert.match(mountinfo, / master:/)
  const ex = await h.exec(id, ['sh', '-c', 'echo out; echo err >&2; exit 5'])
  assert.deepEqual([ex.exitCode, ex.stdout, ex.stderr], [5, 'out\n', 'err\n'])
  const st = await h.stats(id)
  assert.ok(st.memoryBytes > 0 && st.pids >= 1)
  await h.renameContainer(id, `${tag}.renamed`)
  assert.equal((await h.inspectContainer(id)).name, `${tag}.renamed`)
  await assert.rejects(h.renameContainer(id, 'no spaces'), (e) => e.code === 'invalid_argument' && /name/.test(e.message))
  assert.equal((await h.inspectContainer(id)).name, `${tag}.renamed`)
  await h.stopContainer(id, 1000)
  assert.ok([0, 137, 143].includes(await h.waitContainer(id)))
  await h.removeContainer(id, true)
  await h.removeVolume(`${tag}-data`)
  assert.deepEqual(await h.listContainers({ all: true, labels: [`dockfleet.test=${tag}`] }), [])
})

test('events resume from a timestamp', async () => {
  const h = fleet().host('df-1')
  const tag = unique('ev')
  const filters = { type: ['container'], label: [`dockfleet.test=${tag}`] }
  const live = h.events({ filters })
  const id = await h.createContainer({ image: IMAGE, command: ['sh', '-c', 'exit 3'], labels: { 'dockfleet.test': tag } })
  await h.startContainer(id)
  assert.equal(await h.waitContainer(id), 3)
  const seen = []
  for await (const e of live) {
    seen.push(e)
    if (seen.length === 3) break
  }
  assert.deepEqual(seen.map((e) => e.action), ['create', 'start', 'die'])
  assert.equal(seen[2].attributes.exitCode, '3')
  assert.equal(typeof seen[0].timeNanos, 'bigint')
  const replay = []
  for await (const e of h.events({ filters, sinceNanos: seen[1].timeNanos, untilNanos: seen[2].timeNanos + 1_000_000n })) replay.push(e.action)
  assert.deepEqual(replay, ['start', 'die'])
  await h.removeContainer(id, true)
})

test('build, copy with progress, export and import', async () => {
  const f = fleet()
  const [src, dst] = [f.host('df-1'), f.host('df-3')]
  const tag = `dockfleet/js-copy:${unique('c')}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-js-'))
  // The stage after the target fails: the build stops before it.
  fs.writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${IMAGE} AS base\nRUN echo ${tag} > /marker\nFROM base AS broken\nRUN false\n`)
  const events = []
  for await (const e of src.buildImage(dir, { tag, target: 'base', labels: { team: 'js' } })) events.push(e)
  assert.equal(events.at(-1).kind, 'done')
  assert.equal((await src.inspectImage(tag)).labels.team, 'js')
  assert.ok(events.at(-1).imageId.startsWith('sha256:'))
  const progress = []
  for await (const p of dockfleet.copyImage(src, dst, tag)) progress.push(p)
  assert.equal(progress[0].bytes, 0)
  assert.ok(progress.at(-1).done && progress.at(-1).bytes > 1_000_000)
  assert.ok(progress.every((p, i) => i === 0 || progress[i - 1].bytes <= p.bytes))
  assert.ok(await dst.imageExists(tag))
  await dst.removeImage(tag, true)
  assert.deepEqual(await dst.importImage(src.exportImage(tag)), [tag])
  const chunks = []
  for await (const c of src.exportImage(tag)) chunks.push(c)
  await dst.removeImage(tag, true)
  assert.deepEqual(await dst.importImage(Buffer.concat(chunks)), [tag])
  for (const h of [src, dst]) await h.removeImage(tag, true)
  fs.rmSync(dir, { recursive: true })
})

test('push and pull through the testbed registry, credentials from a docker config', async () => {
  const auth = registry()
  const f = fleet()
  const [src, dst] = [f.host('df-1'), f.host('df-2')]
  const run = unique('r')
  const remote = `${auth.server}/dockfleet-test/js:${run}`
  // An image with a layer of its own, which no other host has.
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-reg-'))
  fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${IMAGE}\nRUN echo ${run} > /marker\n`)
  for await (const e of src.buildImage(ctx, { tag: remote })) void e
  fs.rmSync(ctx, { recursive: true })
  const collect = async (stream) => {
    const out = []
    for await (const p of stream) out.push(p)
    return out
  }
  const err = await rejects(collect(src.pushImage(remote, { auth: { ...auth, password: 'wrong' } })), 'unauthorized')
  assert.match(err.message, new RegExp(auth.server.replace(/\./g, '\\.')))
  const pushed = await collect(src.pushImage(remote, { auth }))
  assert.ok(pushed.at(-1).done && pushed.at(-1).digest.startsWith('sha256:'))

  // Credentials as `docker login` keeps them.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-auth-'))
  const token = Buffer.from(`${auth.username}:${auth.password}`).toString('base64')
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [auth.server]: { auth: token } } }))
  const found = dockfleet.dockerConfigAuth(auth.server, path.join(dir, 'config.json'))
  assert.deepEqual({ ...found, identityToken: undefined }, { ...auth, identityToken: undefined })
  assert.equal(dockfleet.dockerConfigAuth('elsewhere.example', path.join(dir, 'config.json')), null)
  fs.rmSync(dir, { recursive: true })

  assert.equal(await dst.imageExists(remote), false)
  await rejects(collect(dst.pullImage(remote)), 'unauthorized')
  const pulled = await collect(dst.pullImage(remote, { auth: found }))
  assert.ok(pulled.at(-1).done && pulled.at(-1).digest === pushed.at(-1).digest)
  assert.ok(pulled.some((p) => p.status === 'Pull complete' && p.layer.length > 0))
  assert.ok(pulled.some((p) => p.total > 0 && p.current <= p.total))
  assert.equal((await dst.inspectImage(remote)).id, (await src.inspectImage(remote)).id)
  await rejects(collect(dst.pullImage(`${remote}-nosuch`, { auth })), 'not_found')
  await rejects(collect(dst.pullImage(remote, { platform: 'linux/../x' })), 'invalid_argument')
  await dst.removeImage(remote)
  await src.removeImage(remote, true)
})

test('probe reports down hosts without rejecting', async () => {
  const f = fleet()
  f.addDocker({ name: 'ghost', address: 'tcp://10.250.0.13:2399', insecure: true })
  const statuses = await f.probe({ timeout: 5000 })
  assert.deepEqual(statuses.map((s) => s.name), ['df-1', 'df-2', 'df-3', 'df-tls', 'ghost'])
  assert.ok(statuses.slice(0, 4).every((s) => s.reachable && s.info.cpus > 0))
  assert.equal(statuses[4].reachable, false)
  assert.equal(statuses[4].errorCode, 'engine_unreachable')
})

// Voluntary context switches so far of napi's tokio threads (a thread woken to do a call's I/O, or
// to hand its result back, counts at least one).
function runtimeThreadSwitches() {
  let total = 0
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (!fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith('tokio-runtime')) continue
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8')
      total += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)[1])
    } catch {
      // a thread that just ended
    }
  }
  return total
}

test('host calls do their I/O on the JS thread, driven by its event loop', async () => {
  const { Worker } = require('node:worker_threads')
  const address = 'tcp://10.250.0.11:2375'
  const h = await dockfleet.DockerHost.connect({ name: 'df-1', address, insecure: true })
  await h.ping()
  const before = runtimeThreadSwitches()
  for (let i = 0; i < 200; i++) assert.ok((await h.ping()).latency > 0)
  const woken = runtimeThreadSwitches() - before
  assert.ok(woken < 50, `napi's tokio threads were woken ${woken} times for 200 calls`)

  // Many at once (several connections), and a rejection settled the same way.
  const many = await Promise.all(Array.from({ length: 20 }, () => h.listContainers()))
  assert.equal(many.length, 20)
  await rejects(h.inspectContainer('dockfleet-no-such-container'), 'not_found')
  // The benchmarks' Node floor (benches/node_floor.js): Promises a uv_poll callback resolves, in order.
  const order = []
  await Promise.all(Array.from({ length: 5 }, (_, i) => dockfleet._ioFloor().then(() => order.push(i))))
  assert.deepEqual(order, [0, 1, 2, 3, 4])

  // A worker thread has a runtime and libuv handles of its own, closed when it ends (else Node aborts
  // closing its loop).
  const code = await new Promise((resolve, reject) => {
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads')
       const dockfleet = require(${JSON.stringify(path.join(__dirname, '..', 'dockfleet.js'))})
       ;(async () => {
         const h = await dockfleet.DockerHost.connect({ name: 'w', address: ${JSON.stringify(address)}, insecure: true })
         for (let i = 0; i < 20; i++) await h.ping()
         await dockfleet._ioFloor()
         parentPort.postMessage('pinged')
       })()`,
      { eval: true },
    )
    w.on('message', (m) => assert.equal(m, 'pinged'))
    w.on('error', reject)
    w.on('exit', resolve)
  })
  assert.equal(code, 0)

  // Nothing pending holds the loop: a script whose last call has settled exits by itself.
  const { execFileSync } = require('node:child_process')
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'dockfleet.js'))}).DockerHost
    .connect({ name: 'x', address: ${JSON.stringify(address)}, insecure: true })
    .then((h) => h.ping()).then((p) => console.log('pinged', p.latency > 0))`
  assert.equal(execFileSync(process.execPath, ['-e', script], { timeout: 20000 }).toString(), 'pinged true\n')

  // tokio's timers run on the loop's timer ticks: a request timeout fires on time. (`sleep` as PID 1
  // ignores SIGTERM: the engine would answer after the 5 s grace period.)
  // Only the call that must time out goes through the host with the short timeout: on a loaded machine
  // creating or starting a container can take longer than 1 s.
  const t = await dockfleet.DockerHost.connect({ name: 'df-1', address, insecure: true, requestTimeout: 1000 })
  const id = await h.createContainer({ image: IMAGE, command: ['sleep', '60'], labels: { 'dockfleet.test': unique('loop') } })
  try {
    await h.startContainer(id)
    const started = Date.now()
    await rejects(t.stopContainer(id, 5000), 'timeout')
    const took = Date.now() - started
    assert.ok(took > 900 && took < 3000, `the 1 s timeout took ${took} ms`)
    assert.ok((await t.ping()).latency > 0)
  } finally {
    await h.removeContainer(id, true)
  }
})
