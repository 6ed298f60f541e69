// Vite config for the web client. `npm run build` writes web/dist (served by
// nginx at /); `npm run dev` serves the sources with the API proxied to a
// running stack (PL_API_URL, default the dev stack's http://127.0.0.1:8080),
// WebSockets of the live chat included.
//
// Entries: one HTML page each in `pages` below (the app is index.html). A
// second page of the build (an API reference, say) is one more line there,
// and nginx serves it as the file it is.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig } from 'vite';
import optimizeLocales from '@react-aria/optimize-locales-plugin';

const api = process.env.PL_API_URL || 'http://127.0.0.1:8080';

// services/list, one name a line: the one list of the services (the runner,
// nginx/render.sh, meson and the images read it too). The app gets it as
// __PL_SERVICES__: the admin's System page draws their pools.
// Read as scripts/lib.sh's read_services reads it: what it refuses, the build refuses.
const serviceList = readFileSync(resolve(import.meta.dirname, '../services/list'), 'utf8');
const services = serviceList.replace(/\n$/, '').split('\n');
for (const name of services) {
  if (!/^[a-z][a-z0-9]{0,30}$/.test(name)) throw new Error(`services/list: '${name}' is not a service name ([a-z][a-z0-9]*)`);
}

const pages = {
  main: 'index.html',
  // the API reference (served at /api-reference; see src/api-reference/main.js)
  'api-reference': 'api-reference.html',
};

export default defineConfig({
  // JSX through esbuild: no React plugin needed for a production build.
  esbuild: { jsx: 'automatic' },
  define: { __PL_SERVICES__: JSON.stringify(services) },
  plugins: [
    // React Aria's strings in English only (the app is in English): not the 30-odd other locales
    { ...optimizeLocales.vite({ locales: ['en-US'] }), enforce: 'pre' },
  ],
  build: {
    outDir: 'dist',
    assetsDir: 'assets', // hashed names: nginx caches /assets/ for good
    sourcemap: false,
    assetsInlineLimit: 0, // no data: URIs; every asset is a file
    // no modulepreload polyfill: with two entries it is a chunk of its own, one
    // more request in a stranger's first load, for browsers that have had
    // <link rel="modulepreload"> for years (one without it just preloads less)
    modulePreload: { polyfill: false },
    // Swagger UI is one chunk of about 1.6 MB, which only the API reference page loads
    chunkSizeWarningLimit: 2000,
    rollupOptions: {
      input: Object.fromEntries(Object.entries(pages).map(([name, file]) => [name, resolve(import.meta.dirname, file)])),
      output: {
        // the libraries every page needs change less often than the app: their own long-cached file
        manualChunks(id) {
          if (/node_modules\/(react|react-dom|scheduler|react-router|@tanstack)\//.test(id)) return 'vendor';
          return undefined;
        },
      },
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE' && /"use client"/.test(warning.message)) return; // React Server Components only
        warn(warning);
      },
    },
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target: api, changeOrigin: false, ws: true },
    },
  },
});
