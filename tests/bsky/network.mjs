#!/usr/bin/env node
// Local AT Protocol network for numpolville-bot tests.
//
// Starts @atproto/dev-env's TestNetwork (PLC + PDS + AppView + Ozone) or, with
// --no-appview, TestNetworkNoAppView (PLC + PDS), bound to 127.0.0.1 only.
// Creates the test accounts, writes a JSON state file once everything is ready,
// then waits.  SIGTERM/SIGINT: close the network, remove the run folder, exit 0.
//
// Usage:
//   node network.mjs --state-file /path/state.json [--no-appview]
//
// Environment:
//   BSKY_STATE_FILE        state file path (alternative to --state-file)
//   BSKY_NO_APPVIEW=1      same as --no-appview
//   BSKY_RUN_DIR           folder for TMPDIR (sqlite files, blobs); created if
//                          missing and removed on stop.  Default: a fresh
//                          mkdtemp folder under the system temp dir.
//   BSKY_PLC_PORT, BSKY_PDS_PORT, BSKY_APPVIEW_PORT, BSKY_OZONE_PORT
//                          fixed ports (default: free ephemeral ports)
//   DB_POSTGRES_URL, DB_POSTGRES_SCHEMA  PostgreSQL for the AppView / Ozone
//   REDIS_HOST             asserted by dev-env, never used (defaulted here)
//   BSKY_PARENT_PID        if set, shut down when that process is gone (the
//                          launcher was killed without stopping us)
//   BSKY_ORPHAN_CLEANUP    JSON {"commands": [[argv...]], "paths": [...]}: run /
//                          removed only in that case (e.g. stop PostgreSQL)
//
// All services advertise http://localhost:PORT; use "localhost" everywhere.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

const BIND_HOST = '127.0.0.1'

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const out = {
    stateFile: process.env.BSKY_STATE_FILE || null,
    noAppView: ['1', 'true', 'yes'].includes(
      (process.env.BSKY_NO_APPVIEW || '').toLowerCase(),
    ),
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--state-file') out.stateFile = argv[++i]
    else if (a.startsWith('--state-file=')) out.stateFile = a.slice(13)
    else if (a === '--no-appview') out.noAppView = true
    else if (a === '-h' || a === '--help') {
      console.log('usage: node network.mjs --state-file FILE [--no-appview]')
      process.exit(0)
    } else {
      console.error(`network.mjs: unknown argument ${a}`)
      process.exit(2)
    }
  }
  if (!out.stateFile) {
    console.error('network.mjs: --state-file (or BSKY_STATE_FILE) is required')
    process.exit(2)
  }
  out.stateFile = path.resolve(out.stateFile)
  return out
}

const args = parseArgs(process.argv.slice(2))

function log(...parts) {
  console.log(`[bsky-network ${new Date().toISOString()}]`, ...parts)
}

// ---------------------------------------------------------------- run folder
// The PDS puts sqlite files and blobs under os.tmpdir() and never removes
// them: point TMPDIR at a folder of our own before dev-env is loaded.
let runDir = process.env.BSKY_RUN_DIR
if (runDir) {
  runDir = path.resolve(runDir)
  fs.mkdirSync(runDir, { recursive: true })
} else {
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'numpolville-bsky-'))
}
process.env.TMPDIR = runDir

// ---------------------------------------------------------------- 127.0.0.1
// Every server in dev-env calls listen(port) without a host, which binds all
// interfaces.  Force loopback.  get-port probes are bound the same way, so a
// port it returns is free on 127.0.0.1.
const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function patchedListen(...largs) {
  const first = largs[0]
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, cb])
    if (typeof largs[1] === 'string') largs[1] = BIND_HOST
    else largs.splice(1, 0, BIND_HOST)
  } else if (first && typeof first === 'object' && !Array.isArray(first) &&
             ('port' in first) && !('path' in first) && !('fd' in first) && !('handle' in first)) {
    largs[0] = { ...first, host: BIND_HOST }
  } else if (first === undefined || first === null || typeof first === 'function') {
    // listen() / listen(cb): random port
    largs.splice(0, first === undefined || first === null ? 1 : 0, 0, BIND_HOST)
  }
  return origListen.apply(this, largs)
}

// ---------------------------------------------------------------- config
function envPort(name) {
  const v = process.env[name]
  if (!v) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0 || n > 65535) {
    console.error(`network.mjs: ${name}=${v} is not a port`)
    process.exit(2)
  }
  return n
}

const ports = {
  plc: envPort('BSKY_PLC_PORT'),
  pds: envPort('BSKY_PDS_PORT'),
  bsky: envPort('BSKY_APPVIEW_PORT'),
  ozone: envPort('BSKY_OZONE_PORT'),
}

// Handles: "bot" and many common words are reserved by the PDS.
const ACCOUNTS = {
  bot: { handle: 'numpolbot.test', password: 'numpolbot-pass' },
  alice: { handle: 'alice.test', password: 'alice-pass' },
  bob: { handle: 'bob.test', password: 'bob-pass' },
  carol: { handle: 'carol.test', password: 'carol-pass' },
  dan: { handle: 'dan.test', password: 'dan-pass' },
}

// ---------------------------------------------------------------- lifecycle
let network = null
let stopping = false

function removeRunDir() {
  try {
    fs.rmSync(runDir, { recursive: true, force: true })
  } catch (err) {
    console.error(`network.mjs: could not remove ${runDir}: ${err}`)
  }
}

function orphanCleanup() {
  let spec
  try {
    spec = JSON.parse(process.env.BSKY_ORPHAN_CLEANUP || '{}')
  } catch (err) {
    console.error(`network.mjs: bad BSKY_ORPHAN_CLEANUP: ${err}`)
    return
  }
  for (const argv of spec.commands || []) {
    const res = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit', timeout: 30_000 })
    if (res.status !== 0) console.error(`network.mjs: cleanup ${argv.join(' ')} -> ${res.status}`)
  }
  for (const p of spec.paths || []) {
    try {
      fs.rmSync(p, { recursive: true, force: true })
    } catch (err) {
      console.error(`network.mjs: could not remove ${p}: ${err}`)
    }
  }
}

async function shutdown(signal, code = 0, orphaned = false) {
  if (stopping) return
  stopping = true
  log(`${signal}: closing network`)
  const finish = (exitCode) => {
    removeRunDir()
    if (orphaned) orphanCleanup()
    process.exit(exitCode)
  }
  const hardStop = setTimeout(() => {
    console.error('network.mjs: close() took more than 10 s, exiting anyway')
    finish(code || 1)
  }, 10_000)
  hardStop.unref()
  try {
    if (network) await network.close()
  } catch (err) {
    console.error('network.mjs: error while closing:', err)
  }
  log('stopped')
  finish(code)
}

// The launcher normally stops us with SIGTERM.  If it is killed instead
// (SIGKILL, CI timeout), do not linger: we are reparented, so notice and stop.
const parentPid = Number(process.env.BSKY_PARENT_PID || 0)
if (parentPid) {
  setInterval(() => {
    if (process.ppid !== parentPid) shutdown('parent-exit', 0, true)
  }, 500).unref()
}

process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGHUP', () => shutdown('SIGHUP'))
process.on('unhandledRejection', (err) => {
  console.error('network.mjs: unhandled rejection:', err)
})

// The launcher may start PostgreSQL while we import dev-env (both take a few
// seconds): it then sets BSKY_WAIT_FILE and creates that file once the
// database accepts connections.  No port is picked before that.
async function waitForGoFile(t0) {
  const goFile = process.env.BSKY_WAIT_FILE
  if (!goFile) return
  const deadline = Date.now() + 120_000
  while (!fs.existsSync(goFile)) {
    if (Date.now() > deadline) throw new Error(`${goFile} did not appear within 120 s`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  log(`database ready after ${Date.now() - t0} ms`)
}

async function main() {
  const t0 = Date.now()
  // Loaded only now, after TMPDIR and listen() are patched.
  const devEnv = await import('@atproto/dev-env')
  const importMs = Date.now() - t0
  log(`dev-env imported in ${importMs} ms`)

  if (args.noAppView) {
    log('starting TestNetworkNoAppView (PLC + PDS)')
    network = await devEnv.TestNetworkNoAppView.create({
      plc: ports.plc ? { port: ports.plc } : {},
      pds: ports.pds ? { port: ports.pds } : {},
    })
  } else {
    await waitForGoFile(t0)
    if (!process.env.DB_POSTGRES_URL) {
      throw new Error('DB_POSTGRES_URL is not set (needed by the AppView); use --no-appview without PostgreSQL')
    }
    process.env.DB_POSTGRES_SCHEMA ||= 'numpolville'
    process.env.REDIS_HOST ||= 'unused.invalid'
    log('starting TestNetwork (PLC + PDS + AppView + Ozone)')
    network = await devEnv.TestNetwork.create({
      dbPostgresSchema: process.env.DB_POSTGRES_SCHEMA,
      plc: ports.plc ? { port: ports.plc } : {},
      pds: ports.pds ? { port: ports.pds } : {},
      bsky: ports.bsky ? { port: ports.bsky } : {},
      ozone: ports.ozone ? { port: ports.ozone } : {},
    })
  }
  const upMs = Date.now() - t0
  log(`network up in ${upMs} ms`)

  // Accounts
  const agent = network.pds.getClient()
  const accounts = {}
  for (const [name, acc] of Object.entries(ACCOUNTS)) {
    const res = await agent.com.atproto.server.createAccount({
      handle: acc.handle,
      email: `${acc.handle.replace(/\.test$/, '')}@numpolville.test`,
      password: acc.password,
    })
    accounts[name] = { handle: res.data.handle, did: res.data.did, password: acc.password }
  }
  // Let the AppView index the new accounts before anyone logs in
  // (Client.login() fetches the profile from the AppView).
  await network.processAll()
  log(`accounts created in ${Date.now() - t0} ms total`)

  const pdsUrl = network.pds.url
  const state = {
    pid: process.pid,
    appview: !args.noAppView,
    pds_url: pdsUrl,
    plc_url: network.plc.url,
    appview_url: args.noAppView ? null : network.bsky.url,
    ozone_url: args.noAppView ? null : network.ozone.url,
    firehose_url: `${pdsUrl.replace(/^http/, 'ws')}/xrpc/com.atproto.sync.subscribeRepos`,
    run_dir: runDir,
    started_ms: Date.now() - t0,
    timings_ms: { import: importMs, network_up: upMs, ready: Date.now() - t0 },
    accounts,
  }
  // Atomic: readers never see a half-written file.
  fs.mkdirSync(path.dirname(args.stateFile), { recursive: true })
  const tmp = `${args.stateFile}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n')
  fs.renameSync(tmp, args.stateFile)
  log(`ready: ${JSON.stringify({ pds_url: state.pds_url, appview_url: state.appview_url, plc_url: state.plc_url })}`)
  log(`state written to ${args.stateFile}`)

  // Stay alive until a signal arrives (servers keep the event loop busy,
  // this interval makes sure of it).
  setInterval(() => {}, 1 << 30)
}

main().catch(async (err) => {
  console.error('network.mjs: startup failed:', err && err.stack ? err.stack : err)
  await shutdown('startup-failure', 1)
})
