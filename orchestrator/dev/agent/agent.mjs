// Kiln's dev agent: runs inside a dev session's container (no network, non-root,
// read-only root) as its only process tree. It starts the project's own Vite with the
// settings Kiln owns, bridges Vite's loopback port to a unix socket the host's preview
// proxy connects to, and takes batches of edits on a second unix socket. It exits when
// its stdin closes (the session manager that attached it is gone).
//
// Environment (set by Kiln): KILN_DEV_HOST (the exact dev--{project} host name),
// KILN_DEV_PUBLIC_PORT, KILN_DEV_RUN (the socket folder), KILN_DEV_ROOT (the app's folder,
// Vite's root: /workspace or /workspace/front), KILN_DEV_TOP (/workspace: the project's
// top, which edits' paths are relative to), KILN_DEV_ALLOW (what Vite may serve files
// from: the app's install folder, a workspace member's workspace root; inside TOP),
// KILN_DEV_REVISION (the session's revision the workspace holds).
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

const TOP = process.env.KILN_DEV_TOP || '/workspace'
const ROOT = process.env.KILN_DEV_ROOT || TOP
const ALLOW = process.env.KILN_DEV_ALLOW || ROOT
const RUN = process.env.KILN_DEV_RUN || '/run/kiln'
const HOST = process.env.KILN_DEV_HOST
const PUBLIC_PORT = Number(process.env.KILN_DEV_PUBLIC_PORT || 80)
const PORT = 5173
const HMR_PATH = '/__kiln_hmr'
const QUIET_MS = Number(process.env.KILN_DEV_COALESCE_MS || 150) // a batch's stragglers
const WINDOW_MS = 1500 // how long after a batch its updates are coalesced
let revision = Number(process.env.KILN_DEV_REVISION || 0) // what the files on disk are

function log(text) {
  process.stderr.write(`[kiln-agent] ${text}\n`)
}

process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))

// The app's own Vite: in its folder's node_modules, else (a workspace member's hoisted
// dependencies) in an enclosing one, up to the project's top and no further.
function viteFolder() {
  for (let folder = ROOT; ; folder = path.dirname(folder)) {
    const candidate = path.join(folder, 'node_modules/vite')
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate
    if (folder === TOP || !folder.startsWith(TOP + '/')) break
  }
  throw new Error(`no node_modules/vite in ${ROOT} or above it up to ${TOP}`)
}

function viteEntry() {
  const folder = viteFolder()
  const pkg = JSON.parse(fs.readFileSync(path.join(folder, 'package.json'), 'utf8'))
  log(`using ${folder}`)
  const pick = (e) =>
    typeof e === 'string' ? e : e ? (pick(e.import) ?? pick(e.node) ?? pick(e.default)) : undefined
  const exported = pkg.exports && typeof pkg.exports === 'object' && '.' in pkg.exports
  const entry = pick(exported ? pkg.exports['.'] : pkg.exports) ?? pkg.module ?? pkg.main
  return { url: pathToFileURL(path.join(folder, entry)).href, version: pkg.version }
}

// Vite 8.1 and later read the HMR socket's settings from server.ws (server.hmr's are a
// deprecated alias that warns); 8.0 and older only from server.hmr.
let socketInWs = false

function takesSocketInWs(version) {
  const [major, minor] = version.split('.').map(Number)
  return major > 8 || (major === 8 && minor >= 1)
}

// The settings Kiln owns, applied last whatever the project's config and plugins set.
function enforce(server) {
  server.host = '127.0.0.1'
  server.port = PORT
  server.strictPort = true
  server.allowedHosts = [HOST]
  server.cors = false
  server.open = false
  const socket = { protocol: 'ws', clientPort: PUBLIC_PORT, path: HMR_PATH }
  if (socketInWs) {
    server.ws = socket // Vite 8.1 moved the socket's settings from server.hmr to server.ws
    server.hmr = { overlay: true }
  } else {
    server.hmr = { ...socket, overlay: true }
  }
  server.fs = { ...(server.fs || {}), strict: true, allow: [ALLOW] }
  server.proxy = undefined
}

const kilnPlugin = {
  name: 'kiln:dev-settings',
  enforce: 'post',
  config() {
    const server = {}
    enforce(server)
    return { server, clearScreen: false }
  },
  configResolved(config) {
    enforce(config.server)
  },
  // Each page says which revision it was served at: the client hook compares it with the
  // current one once its HMR socket is open, and reloads when an edit landed in between.
  transformIndexHtml() {
    return [
      { tag: 'meta', attrs: { name: 'kiln-revision', content: String(revision) }, injectTo: 'head-prepend' },
    ]
  },
}

// Coalesce the updates one batch of edits causes into one message, so the browser
// applies the batch at once: within WINDOW_MS of a batch, updates wait until every
// edited module has one (or QUIET_MS pass without another); other traffic passes.
const MODULE = /\.(m?[jt]sx?|vue|svelte|css|scss|less)$/

function coalescing(channel) {
  const original = channel.send.bind(channel)
  let until = 0
  let buffered = null
  let expected = new Set()
  let timer = null
  const flush = () => {
    clearTimeout(timer)
    timer = null
    if (!buffered) return
    const seen = new Set()
    const updates = buffered.filter((u) => {
      const key = `${u.type}:${u.path}:${u.acceptedPath}`
      return seen.has(key) ? false : (seen.add(key), true)
    })
    buffered = null
    original({ type: 'update', updates })
  }
  channel.send = (...args) => {
    const payload = typeof args[0] === 'string' ? null : args[0]
    if (!payload || Date.now() > until) {
      flush()
      return original(...args)
    }
    if (payload.type === 'update') {
      buffered = (buffered || []).concat(payload.updates || [])
      for (const u of payload.updates || []) {
        expected.delete(u.path)
        expected.delete(u.acceptedPath)
      }
      clearTimeout(timer)
      if (expected.size === 0) flush()
      else timer = setTimeout(flush, QUIET_MS)
      return
    }
    if (payload.type === 'full-reload') buffered = null
    flush()
    return original(...args)
  }
  return {
    open(paths) {
      until = Date.now() + WINDOW_MS
      expected = new Set(paths.filter((p) => MODULE.test(p)).map(viteUrl))
    },
    announce(data) {
      flush()
      original({ type: 'custom', event: 'kiln:revision', data })
    },
  }
}

// The URL Vite's updates name an edited file by (a path from the project's top): from
// Vite's root inside it, else Vite's /@fs/ form.
function viteUrl(rel) {
  const absolute = path.join(TOP, rel)
  return absolute.startsWith(ROOT + '/') ? `/${path.relative(ROOT, absolute)}` : `/@fs${absolute}`
}

function writeBatch(files, batch) {
  const staged = []
  for (const [rel, content] of Object.entries(files)) {
    const target = path.join(TOP, rel)
    if (!target.startsWith(TOP + '/')) throw new Error(`path outside the project: ${rel}`)
    if (content === null) {
      staged.push([null, target])
      continue
    }
    fs.mkdirSync(path.dirname(target), { recursive: true })
    const beside = `${target}.kiln-${batch}.tmp`
    fs.writeFileSync(beside, Buffer.from(content, 'base64'))
    staged.push([beside, target])
  }
  // Everything is written beside its place; now each file is swapped in by a rename.
  for (const [beside, target] of staged) {
    if (beside === null) fs.rmSync(target, { force: true })
    else fs.renameSync(beside, target)
  }
}

// Vite notices an edit when its watcher does, some milliseconds later; until then it
// would serve a page's request for an edited module from its old transform. The graphs
// forget the edited files at once, as Vite's own watcher handler does first.
function forget(server, rels) {
  const graphs = server?.environments
    ? Object.values(server.environments).map((environment) => environment.moduleGraph)
    : [server?.moduleGraph]
  for (const rel of rels) {
    for (const graph of graphs) graph?.onFileChange?.(path.join(TOP, rel))
  }
}

const live = { hot: null, server: null }

function control() {
  fs.rmSync(path.join(RUN, 'agent.sock'), { force: true })
  const server = net.createServer((socket) => {
    let raw = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => {
      raw += chunk
      const end = raw.indexOf('\n')
      if (end < 0) return
      let reply
      try {
        const command = JSON.parse(raw.slice(0, end))
        if (command.op === 'apply') {
          const written = Object.keys(command.files).filter((p) => command.files[p] !== null)
          live.hot?.open(written)
          live.hot?.announce({ revision: command.revision, paths: Object.keys(command.files) })
          writeBatch(command.files, command.revision)
          revision = command.revision
          forget(live.server, Object.keys(command.files))
          reply = { ok: true, applied_at: Date.now() }
        } else {
          reply = { ok: false, error: `unknown op ${command.op}` }
        }
      } catch (err) {
        reply = { ok: false, error: String(err?.message || err) }
      }
      socket.end(JSON.stringify(reply) + '\n')
    })
  })
  server.listen(path.join(RUN, 'agent.sock'), () => openToHost(path.join(RUN, 'agent.sock')))
}

// The host's preview proxy and API connect to the sockets; under gVisor (runsc-dev) a socket
// made on a host mount cannot be chmod-ed from inside, and keeps its owner's mode.
function openToHost(socket) {
  try {
    fs.chmodSync(socket, 0o666)
  } catch (err) {
    log(`${path.basename(socket)} keeps its mode (${err.code}); the host connects as root`)
  }
}

function bridge() {
  const target = path.join(RUN, 'dev.sock')
  fs.rmSync(target, { force: true })
  const server = net.createServer((downstream) => {
    const upstream = net.connect(PORT, '127.0.0.1')
    downstream.pipe(upstream)
    upstream.pipe(downstream)
    const close = () => {
      downstream.destroy()
      upstream.destroy()
    }
    downstream.on('error', close)
    upstream.on('error', close)
    downstream.on('close', close)
    upstream.on('close', close)
  })
  server.listen(target, () => {
    openToHost(target)
    log(`dev server bridged to ${target}`)
  })
}

async function main() {
  control() // edits can land (and fix a broken config) even before Vite is up
  const { url, version } = viteEntry()
  log(`vite ${version}`)
  socketInWs = takesSocketInWs(version)
  const vite = await import(url)
  const server = await vite.createServer({
    root: ROOT,
    configFile: undefined,
    clearScreen: false,
    server: { host: '127.0.0.1', port: PORT, strictPort: true, allowedHosts: [HOST] },
    plugins: [kilnPlugin],
  })
  enforce(server.config.server)
  const channel = server.environments?.client?.hot ?? server.hot ?? server.ws
  live.hot = channel && typeof channel.send === 'function' ? coalescing(channel) : null
  live.server = server
  // A page's hook asks, once its socket is open, which revision the files are at now.
  channel?.on?.('kiln:hello', (_data, client) => client?.send?.('kiln:current', { revision }))
  await server.listen(PORT, false)
  bridge()
}

main().catch((err) => {
  log(`the dev server did not start: ${err?.stack || err}`)
  process.exit(1)
})
