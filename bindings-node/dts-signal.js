'use strict'
// Declares in index.d.ts the trailing AbortSignal that dockfleet.js accepts on every call returning a
// Promise: napi generates index.d.ts from the Rust signatures, which do not have it. Run after
// `napi build` (package.json's build scripts, scripts/test.sh and benches/release_builds.sh do);
// running it again changes nothing.
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, 'index.d.ts')
const PARAM = 'abortSignal?: AbortSignal | undefined | null'
const lines = fs.readFileSync(file, 'utf8').split('\n')
const out = lines.map((line) => {
  const m = /^(export declare function \w+|  (?:static )?\w+)\((.*)\)(: Promise<.*)$/.exec(line)
  if (!m || m[2].endsWith(PARAM)) return line
  return `${m[1]}(${m[2] ? `${m[2]}, ` : ''}${PARAM})${m[3]}`
})
fs.writeFileSync(file, out.join('\n'))
