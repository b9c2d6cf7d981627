import { defineConfig } from "vite";

// The dashboard is served by Kiln's API at `/`; assets under /assets/ are immutable.
// In `npm run dev`, API calls go to a Kiln at KILN_URL (default http://127.0.0.1:8000).
export default defineConfig({
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: { "/api": process.env.KILN_URL ?? "http://127.0.0.1:8000" },
  },
});
