const { execFileSync } = require('node:child_process')
const path = require('node:path')
const fs = require('node:fs')
const dockfleet = require('../dockfleet.js')

const ROOT = path.resolve(__dirname, '..', '..')
const TESTBED = process.env.DOCKFLEET_TESTBED || '/var/lib/dockfleet-testbed'
const IMAGE = 'dockfleet/busybox:latest'
let counter = 0

function fleet() {
  const file = path.join(TESTBED, 'fleet.toml')
  if (!fs.existsSync(file)) throw new Error(`${file} missing: run scripts/testbed.sh up`)
  return dockfleet.Fleet.fromFile(file)
}

const unique = (prefix) => `${prefix}-js${process.pid}-${counter++}`
const cert = (name) => path.join(TESTBED, 'certs', name)
const testbed = (...args) => execFileSync('bash', [path.join(ROOT, 'scripts', 'testbed.sh'), ...args], { stdio: 'inherit' })

async function rejects(promise, code) {
  try {
    await promise
  } catch (err) {
    if (err.code !== code) throw new Error(`expected code ${code}, got ${err.code}: ${err.message}`)
    return err
  }
  throw new Error(`expected a rejection with code ${code}`)
}

// The testbed's registry (scripts/testbed.sh up starts it) as a RegistryAuth, from the file the script writes.
function registry() {
  const env = Object.fromEntries(
    fs.readFileSync(path.join(TESTBED, 'registry', 'env'), 'utf8').trim().split('\n').map((l) => l.split('=')),
  )
  return { server: env.REGISTRY, username: env.REGISTRY_USER, password: env.REGISTRY_PASSWORD }
}

module.exports = { dockfleet, fleet, unique, cert, testbed, rejects, registry, IMAGE, ROOT, TESTBED }
