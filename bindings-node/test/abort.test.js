// AbortSignal: every call that returns a Promise takes one as its last argument; aborting it drops the
// call's work and rejects with code `cancelled`, as cancelling the task does in Python.
const test = require('node:test')
const assert = require('node:assert/strict')
const { getEventListeners } = require('node:events')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { dockfleet, fleet, unique, rejects, IMAGE, ROOT } = require('./helpers.js')

// A running container that sleeps for a minute, removed after `body`.
async function withSleeper(h, body) {
  const labels = { 'dockfleet.test': unique('abort') }
  const id = await h.createContainer({ image: IMAGE, command: ['sleep', '60'], labels })
  try {
    await h.startContainer(id)
    await body(id)
  } finally {
    await h.removeContainer(id, true, false)
  }
}

test('aborting a call on the JS thread (waitContainer, exec) rejects with cancelled at once', async () => {
  const h = fleet().host('df-1')
  await withSleeper(h, async (id) => {
    for (const start of [(s) => h.waitContainer(id, s), (s) => h.exec(id, ['sleep', '50'], null, s)]) {
      const ac = new AbortController()
      const reason = new Error('enough')
      setTimeout(() => ac.abort(reason), 200)
      const t0 = Date.now()
      const e = await rejects(start(ac.signal), 'cancelled')
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`)
      assert.match(e.message, /aborted by its AbortSignal/)
      assert.equal(e.cause, reason, "the signal's reason is the cause")
    }
    // As the README shows it: a deadline.
    const e = await rejects(h.waitContainer(id, AbortSignal.timeout(300)), 'cancelled')
    assert.equal(e.cause.name, 'TimeoutError')
    // The host is fine afterwards, and the container was left alone.
    assert.equal((await h.inspectContainer(id)).state.running, true)
  })
})

test('aborting a call on the runtime (a stream waiting for its next item) rejects with cancelled', async () => {
  const h = fleet().host('df-1')
  const s = h.events({ filters: { label: [`dockfleet.test=${unique('none')}`] } })
  try {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 200)
    const e = await rejects(s.next(ac.signal), 'cancelled')
    assert.equal(e.cause.name, 'AbortError')
  } finally {
    await s.close()
  }
})

test('an aborted signal starts nothing; a live one changes nothing; a bad argument does not arm the next call', async () => {
  const h = fleet().host('df-1')
  const labels = { 'dockfleet.test': unique('pre') }
  await rejects(h.createContainer({ image: IMAGE, labels }, AbortSignal.abort()), 'cancelled')
  // (Zero replicas of a unique service: were the signal ignored, the deploy would leave nothing behind.)
  await rejects(dockfleet.deploy(fleet(), { name: unique('web'), image: IMAGE, replicas: 0 }, null, AbortSignal.abort()), 'cancelled')
  assert.deepEqual(await h.listContainers({ all: true, labels: [`dockfleet.test=${labels['dockfleet.test']}`] }), [])
  const live = new AbortController()
  assert.ok((await h.ping(live.signal)).latency > 0)
  assert.equal(getEventListeners(live.signal, 'abort').length, 0)
  // A refused argument rejects before the call starts; aborting its signal later cancels nothing else.
  const ac = new AbortController()
  await rejects(h.stopContainer('x', -1, ac.signal), 'invalid_argument')
  const next = h.ping()
  ac.abort()
  assert.ok((await next).latency > 0)
})

// A signal as the `abort-controller` polyfill makes one: an EventTarget with `aborted` and `reason`,
// not an instance of Node's AbortSignal.
class PolyfillSignal extends EventTarget {
  aborted = false
  reason = undefined
  abort(reason) {
    this.aborted = true
    this.reason = reason
    this.dispatchEvent(new Event('abort'))
  }
}

test("a signal that is not Node's own (a polyfill's) is honoured too", async () => {
  const h = fleet().host('df-1')
  await withSleeper(h, async (id) => {
    const signal = new PolyfillSignal()
    assert.ok(!(signal instanceof AbortSignal))
    const reason = new Error('enough')
    setTimeout(() => signal.abort(reason), 200)
    const e = await rejects(h.waitContainer(id, signal), 'cancelled')
    assert.equal(e.cause, reason)
    const aborted = new PolyfillSignal()
    aborted.abort(reason)
    await rejects(h.ping(aborted), 'cancelled')
    // A live one: the call completes, and its listener is gone afterwards.
    const live = new PolyfillSignal()
    let listeners = 0
    const add = live.addEventListener.bind(live)
    live.addEventListener = (...a) => (listeners++, add(...a))
    const remove = live.removeEventListener.bind(live)
    live.removeEventListener = (...a) => (listeners--, remove(...a))
    assert.ok((await h.ping(live)).latency > 0)
    assert.equal(listeners, 0)
  })
})

test('index.d.ts declares the AbortSignal on every call that returns a Promise, and TypeScript accepts it', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const promised = dts.split('\n').filter((l) => /\): Promise</.test(l))
  assert.ok(promised.length > 80, `${promised.length} calls`)
  assert.deepEqual(promised.filter((l) => !/abortSignal\?: AbortSignal \| undefined \| null\): Promise</.test(l)), [])
  // Type-check a use (and a misuse, which must fail) with the TypeScript that @napi-rs/cli brings.
  const tsc = path.join(ROOT, 'bindings-node', 'node_modules', '.bin', 'tsc')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-ts-'))
  const check = (body) => {
    const file = path.join(dir, 'check.ts')
    fs.writeFileSync(file, `import { DockerHost, deploy, Fleet } from ${JSON.stringify(path.join(ROOT, 'bindings-node', 'index'))}
declare const h: DockerHost
declare const f: Fleet
const signal = new AbortController().signal
export async function main() {
${body}
}
`)
    const args = ['--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'commonjs', '--lib', 'es2022,dom', file]
    try {
      execFileSync(tsc, args, { encoding: 'utf8' })
    } catch (e) {
      throw new Error(`tsc: ${e.stdout}${e.stderr}`)
    }
  }
  try {
    check(`  await h.ping(signal)
  await h.killContainer('id', 'SIGTERM', signal)
  await DockerHost.connect({ name: 'x', address: 'unix:///x' }, signal)
  await deploy(f, { name: 'web', image: 'x' }, undefined, signal)`)
    assert.throws(() => check('  await h.ping(42)'), /not assignable/)
  } finally {
    fs.rmSync(dir, { recursive: true })
  }
})
