// Vite config for the web client. `npm run build` writes web/dist (served by
// nginx at /); `npm run dev` serves the sources with the API proxied to a
// running stack (PL_API_URL, default the dev stack's http://127.0.0.1:8080),
// WebSockets of the live chat included.
import { defineConfig } from 'vite';

const api = process.env.PL_API_URL || 'http://127.0.0.1:8080';

export default defineConfig({
  // JSX through esbuild: no React plugin needed for a production build.
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    assetsDir: 'assets', // hashed names: nginx caches /assets/ for good
    sourcemap: false,
    assetsInlineLimit: 0, // no data: URIs; every asset is a file
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: api, changeOrigin: false, ws: true },
    },
  },
});
