import fs from 'node:fs'
import { defineConfig } from 'vite'

// What the dev server itself runs on and installed with, read back by the page.
export default defineConfig({
  define: {
    __NODE__: JSON.stringify(process.version),
    __PNPM__: JSON.stringify(fs.existsSync('node_modules/.pnpm')),
  },
})
