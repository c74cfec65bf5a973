'use strict'
// Run after `napi build` (package.json's build scripts, scripts/test.sh and benches/release_builds.sh
// do); running it again changes nothing. From the index.d.ts napi generated, it
// - declares the trailing AbortSignal that dockfleet.js accepts on every call returning a Promise (the
//   Rust signatures, which napi reads, do not have it);
// - writes promise-calls.json: those calls, as `Class.method`, `Class.static method` and `function`,
//   which dockfleet.js reads to tell them from the synchronous ones.
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, 'index.d.ts')
const PARAM = 'abortSignal?: AbortSignal | undefined | null'
const calls = []
let cls = null
const out = fs.readFileSync(file, 'utf8').split('\n').map((line) => {
  let c
  if ((c = /^export declare class (\w+)/.exec(line))) cls = c[1]
  else if (line.startsWith('}')) cls = null
  const m = /^(?:export declare function (\w+)|( {2})(static )?(\w+))\((.*)\)(: Promise<.*)$/.exec(line)
  if (!m || (m[2] && !cls)) return line
  const [, fn, indent, statik, method, params, returns] = m
  calls.push(fn || `${cls}.${statik || ''}${method}`)
  if (params.endsWith(PARAM)) return line
  const head = fn ? `export declare function ${fn}` : `${indent}${statik || ''}${method}`
  return `${head}(${params ? `${params}, ` : ''}${PARAM})${returns}`
})
fs.writeFileSync(file, out.join('\n'))
fs.writeFileSync(path.join(__dirname, 'promise-calls.json'), `${JSON.stringify(calls.sort(), null, 1)}\n`)
