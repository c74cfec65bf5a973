'use strict'
// dockfleet for Node: the napi module (index.js, generated) plus the async-iterator protocol on its
// stream classes, so `for await (const x of stream)` works; breaking out of the loop closes the stream.
const native = require('./index.js')

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
