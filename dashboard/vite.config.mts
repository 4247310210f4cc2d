// The dashboard: built into dashboard/dist, which the api serves (api/app.ts). `npm run dev:dashboard`
// serves it with hot reload and sends /v1 to an api on PARLEY_API_URL (default http://localhost:3000).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // React Flow marks its modules "use client" (for server components); meaningless in an SPA.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: { '/v1': process.env.PARLEY_API_URL ?? 'http://localhost:3000' },
  },
});
