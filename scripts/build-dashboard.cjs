// Builds the dashboard (React + Vite) into dashboard/dist when any of its sources is newer than the
// last build. Used by the bootstrap (npm start, npm test) and by the browser tests; Node built-ins only.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dashboard = path.join(root, 'dashboard');

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function newest(dir) {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(file) : mtime(file));
  }
  return latest;
}

/** True when dist is current (built now or before); false when the build failed. */
function buildDashboardIfStale() {
  const sources = Math.max(
    newest(path.join(dashboard, 'src')),
    // The dashboard shares contracts/ with the server (definition validation, statuses).
    newest(path.join(root, 'contracts')),
    mtime(path.join(dashboard, 'index.html')),
    mtime(path.join(dashboard, 'vite.config.mts')),
    mtime(path.join(root, 'package-lock.json')),
  );
  if (mtime(path.join(dashboard, 'dist', 'index.html')) >= sources) return true;
  console.log('[parley] building the dashboard…');
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', dashboard, '--logLevel', 'warn'], {
    cwd: root,
    stdio: 'inherit',
  });
  return result.status === 0;
}

module.exports = { buildDashboardIfStale };

if (require.main === module) process.exit(buildDashboardIfStale() ? 0 : 1);
