// The packed package installs into a fresh Node project, loads, and runs the README example.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT } = require('./helpers.js')

test('npm pack → npm install in a fresh project → require and run the example', () => {
  const pkgDir = path.join(ROOT, 'bindings-node')
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'dockfleet-npm-'))
  const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: pkgDir, encoding: 'utf8' }).trim().split('\n').at(-1)
  execFileSync('npm', ['init', '-y'], { cwd: work, stdio: 'ignore' })
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', path.join(work, tgz)], { cwd: work, stdio: 'ignore' })
  const types = fs.readFileSync(path.join(work, 'node_modules', 'dockfleet', 'index.d.ts'), 'utf8')
  assert.match(types, /export declare class DockerHost/)
  const out = execFileSync('node', [path.join(ROOT, 'examples', 'node', 'quickstart.js')], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, NODE_PATH: path.join(work, 'node_modules') },
  })
  assert.match(out, /exit 0: hello from dockfleet/)
  fs.rmSync(work, { recursive: true })
})
