// Kiln's client hook, added to every HTML page of a dev session by Kiln's preview proxy.
// It listens to Vite's own HMR client and tells Kiln when an edit reached this page
// (applied update or full reload) and which errors the page saw.
import { createHotContext } from '/@vite/client'

const hot = createHotContext('/__kiln/hook.js')
const RELOAD_KEY = 'kiln:reloaded-revision'
let revision = Number(sessionStorage.getItem('kiln:revision') || 0)

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

const reloaded = sessionStorage.getItem(RELOAD_KEY)
if (reloaded !== null) {
  sessionStorage.removeItem(RELOAD_KEY)
  report({ kind: 'full-reload', revision: Number(reloaded), paths: ['*'] })
}
