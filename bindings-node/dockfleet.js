'use strict'
// dockfleet for Node: the napi module (index.js, generated) plus the async-iterator protocol on its
// stream classes, so `for await (const x of stream)` works; breaking out of the loop closes the stream;
// and the code `invalid_argument` on an argument napi cannot convert.
const native = require('./index.js')

// napi-rs throws for an argument it cannot convert (a wrong type, a missing field, a number out of
// range, which the binding refuses instead of wrapping or clamping it) with its own status as `.code`.
// dockfleet's code for bad input is `invalid_argument`, in Rust and Python too; the message, which
// names the field (`… on ServicePort.target on ServiceSpec.ports`), stays as it is.
const NAPI_ARGUMENT_STATUSES = new Set([
  'InvalidArg', 'ObjectExpected', 'StringExpected', 'NameExpected', 'FunctionExpected', 'NumberExpected',
  'BooleanExpected', 'ArrayExpected', 'BigintExpected', 'DateExpected', 'ArrayBufferExpected',
])

// A Rust panic in a synchronous call is caught (napi's `catch_unwind`, on every function) and thrown with
// napi's `GenericFailure`: dockfleet's code for it is `internal`, as for a panic in an async call.
// `e` with dockfleet's code in place of napi's status, for both kinds.
function dockfleetCode(e) {
  if (e instanceof Error && NAPI_ARGUMENT_STATUSES.has(e.code)) e.code = 'invalid_argument'
  else if (e instanceof Error && e.code === 'GenericFailure') e.code = 'internal'
  return e
}

// The calls that return a Promise, as `Class.method`, `Class.static method` and `function`: written
// by dts-signal.js from index.d.ts at build time.
const PROMISE_CALLS = new Set(require('./promise-calls.json'))
const returnsPromise = (key) => PROMISE_CALLS.has(key)

// The native functions behind AbortSignal support (src/abort.rs), taken before they are wrapped.
const { _armAbort, _disarmAbort, _abort, _forgetAbort } = native
const ABORTED = 'aborted by its AbortSignal'

// Whether `x` is an AbortSignal. Recognised by its shape, as Node's own APIs (`fs`, `fetch`, `events`)
// recognise one: an `instanceof` test would miss a signal of another realm (a `vm` context) or of a
// polyfill, which would then reach napi as one argument too many and be ignored.
function isAbortSignal(x) {
  return typeof x === 'object' && x !== null && 'aborted' in x && typeof x.addEventListener === 'function' &&
    typeof x.removeEventListener === 'function'
}

// The error of a call aborted by `signal`: code `cancelled`, and the signal's reason as its cause.
function cancelled(signal, e = new Error(`cancelled: ${ABORTED}`)) {
  e.code = 'cancelled'
  if (e.cause === undefined) e.cause = signal.reason
  return e
}

// Calls `f` with `args` and a trailing AbortSignal: aborting the signal drops the call's work (as
// dropping its future does in Rust and cancelling its task does in Python) and the Promise rejects with
// the code `cancelled`. A signal already aborted rejects at once and starts nothing.
function withSignal(f, self, args, signal) {
  if (signal.aborted) return Promise.reject(cancelled(signal))
  const id = _armAbort()
  let p
  try {
    p = f.apply(self, args)
  } catch (e) {
    _forgetAbort(id)
    return Promise.reject(dockfleetCode(e))
  } finally {
    _disarmAbort()
  }
  const onAbort = () => _abort(id)
  signal.addEventListener('abort', onAbort, { once: true })
  const settled = () => {
    signal.removeEventListener('abort', onAbort)
    _forgetAbort(id)
  }
  return p.then(
    (v) => {
      settled()
      return v
    },
    (e) => {
      settled()
      throw e instanceof Error && e.code === 'cancelled' && signal.aborted ? cancelled(signal, e) : e
    },
  )
}

// `f` (known as `key` to returnsPromise), throwing argument errors with the code `invalid_argument` and
// caught panics with `internal`. napi converts the arguments before the call starts any work, and
// throws when it cannot, also for a call that returns a Promise: such a call rejects instead, as a
// Promise-returning function should (`.catch()` sees the error). Rejections already carry dockfleet
// codes. A call that returns a Promise also takes an AbortSignal as its last argument (withSignal).
function checked(f, key) {
  const g = function (...args) {
    const last = args[args.length - 1]
    if (isAbortSignal(last) && returnsPromise(key)) return withSignal(f, this, args.slice(0, -1), last)
    try {
      return f.apply(this, args)
    } catch (e) {
      if (returnsPromise(key)) return Promise.reject(dockfleetCode(e))
      throw dockfleetCode(e)
    }
  }
  Object.defineProperty(g, 'name', { value: f.name })
  Object.defineProperty(g, 'length', { value: f.length })
  return g
}

// Every method of `target` (an object's own function-valued properties), checked in place; `prefix`
// names them for returnsPromise.
function checkMethods(target, prefix) {
  for (const key of Object.getOwnPropertyNames(target)) {
    const d = Object.getOwnPropertyDescriptor(target, key)
    if (key !== 'constructor' && typeof d.value === 'function' && d.writable) {
      Object.defineProperty(target, key, { ...d, value: checked(d.value, prefix + key) })
    }
  }
}

for (const [name, v] of Object.entries(native)) {
  if (typeof v !== 'function') continue
  const methods = Object.getOwnPropertyNames(v.prototype || {}).filter((n) => n !== 'constructor')
  if (methods.length === 0) {
    native[name] = checked(v, name)
    continue
  }
  // A class: its methods and static factories in place, its constructor through a Proxy (the class
  // itself stays what `instanceof` and the factories' instances see).
  checkMethods(v.prototype, `${name}.`)
  checkMethods(v, `${name}.static `)
  native[name] = new Proxy(v, {
    construct(target, args, newTarget) {
      try {
        return Reflect.construct(target, args, newTarget)
      } catch (e) {
        throw dockfleetCode(e)
      }
    },
  })
}

const streams = Object.keys(native).filter((name) => name.endsWith('Stream'))
for (const name of streams) {
  const proto = native[name].prototype
  proto[Symbol.asyncIterator] = function () {
    const stream = this
    return {
      async next() {
        const value = await stream.next()
        return value === null || value === undefined ? { done: true, value: undefined } : { done: false, value }
      },
      async return() {
        await stream.close()
        return { done: true, value: undefined }
      },
      [Symbol.asyncIterator]() {
        return this
      },
    }
  }
}

native.LATENCY_BOUNDS_MS = Object.freeze(native._latencyBoundsMs())

module.exports = native
