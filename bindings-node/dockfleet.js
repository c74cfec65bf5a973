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

// `f`, throwing argument errors with the code `invalid_argument` and caught panics with `internal`.
// Conversion happens before the call starts any work, so only a synchronous throw can be either;
// rejections already carry dockfleet codes.
function checked(f) {
  const g = function (...args) {
    try {
      return f.apply(this, args)
    } catch (e) {
      throw dockfleetCode(e)
    }
  }
  Object.defineProperty(g, 'name', { value: f.name })
  Object.defineProperty(g, 'length', { value: f.length })
  return g
}

// Every method of `target` (an object's own function-valued properties), checked in place.
function checkMethods(target) {
  for (const key of Object.getOwnPropertyNames(target)) {
    const d = Object.getOwnPropertyDescriptor(target, key)
    if (key !== 'constructor' && typeof d.value === 'function' && d.writable) {
      Object.defineProperty(target, key, { ...d, value: checked(d.value) })
    }
  }
}

for (const [name, v] of Object.entries(native)) {
  if (typeof v !== 'function') continue
  const methods = Object.getOwnPropertyNames(v.prototype || {}).filter((n) => n !== 'constructor')
  if (methods.length === 0) {
    native[name] = checked(v)
    continue
  }
  // A class: its methods and static factories in place, its constructor through a Proxy (the class
  // itself stays what `instanceof` and the factories' instances see).
  checkMethods(v.prototype)
  checkMethods(v)
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
