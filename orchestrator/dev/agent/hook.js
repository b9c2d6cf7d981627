// Kiln's client hook, added to every HTML page of a dev session by Kiln's preview proxy.
// It listens to Vite's own HMR client and tells Kiln when an edit reached this page
// (applied update or full reload) and which errors the page saw.
import { createHotContext } from '/@vite/client'

const hot = createHotContext('/__kiln/hook.js')
const RELOAD_KEY = 'kiln:reloaded-revision'
// The revision this page was served at (Kiln's agent adds it to every page Vite serves).
const served = Number(document.querySelector('meta[name="kiln-revision"]')?.content ?? NaN)
let revision = Number.isNaN(served) ? Number(sessionStorage.getItem('kiln:revision') || 0) : served

function report(body) {
  try {
    fetch('/__kiln/report', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, revision: body.revision ?? revision }),
      keepalive: true,
    }).catch(() => {})
  } catch {}
}

function relative(file) {
  if (!file) return undefined
  return String(file).replace(/^https?:\/\/[^/]+\//, '').replace(/^\/?workspace\//, '').replace(/[?#].*$/, '')
}

hot.on('kiln:revision', (data) => {
  revision = data.revision
  sessionStorage.setItem('kiln:revision', String(revision))
})
hot.on('vite:afterUpdate', (payload) => {
  const paths = [...new Set((payload.updates || []).map((u) => u.path))]
  report({ kind: 'update', paths, updates: (payload.updates || []).length })
})
hot.on('vite:beforeFullReload', () => {
  sessionStorage.setItem(RELOAD_KEY, String(revision))
})
hot.on('vite:error', (payload) => {
  const err = payload.err || {}
  report({
    kind: 'error',
    message: String(err.message || 'error').slice(0, 2000),
    file: relative(err.loc?.file || err.id),
    line: err.loc?.line,
    column: err.loc?.column,
  })
})
window.addEventListener('error', (event) => {
  report({
    kind: 'error',
    message: String(event.message || 'error').slice(0, 2000),
    file: relative(event.filename),
    line: event.lineno,
    column: event.colno,
  })
})
window.addEventListener('unhandledrejection', (event) => {
  report({ kind: 'error', message: String(event.reason?.message || event.reason).slice(0, 2000) })
})

// An edit that landed after this page was served and before its HMR socket opened was
// broadcast to no one: the page may have loaded the old module. The agent answers with
// the current revision once the socket is open; behind it, the page reloads.
let reloading = false
hot.on('kiln:current', (data) => {
  if (reloading || Number.isNaN(served) || !(data.revision > served)) return
  reloading = true
  sessionStorage.setItem(RELOAD_KEY, String(data.revision))
  location.reload()
})
hot.send('kiln:hello', {})

const reloaded = sessionStorage.getItem(RELOAD_KEY)
if (reloaded !== null) {
  sessionStorage.removeItem(RELOAD_KEY)
  report({ kind: 'full-reload', revision: Number(reloaded), paths: ['*'] })
}
