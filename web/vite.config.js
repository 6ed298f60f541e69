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
    // two pages: the app, and the API reference (its own entry, served at
    // /api-reference; see src/api-reference/main.js)
    rollupOptions: {
      input: { index: 'index.html', 'api-reference': 'api-reference.html' },
    },
    // Swagger UI is one chunk of about 1.6 MB, which only the reference page loads
    chunkSizeWarningLimit: 2000,
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: api, changeOrigin: false, ws: true },
    },
  },
});
