#!/usr/bin/env node
// First-use set-up before `npm start` / `npm test`, with Node built-ins only (dependencies may be
// missing): checks the Node version and installs npm packages when absent or out of date.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`Parley needs Node.js >= 20.19 (this is ${process.versions.node}).`);
  process.exit(1);
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

const installedMarker = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
const manifest = path.join(root, 'package.json');
const installed = mtime(installedMarker);
const reason = !installed
  ? 'packages are not installed'
  : Math.max(mtime(lock), mtime(manifest)) > installed
    ? 'package.json or package-lock.json changed'
    : undefined;

if (reason) {
  console.log(`[parley] installing npm packages (${reason})…`);
  // `npm ci` would be stricter, but the registry mirror here omits other platforms' optional
  // binaries, which npm ci insists on seeing in the lock file; npm install honours the lock all the same.
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

/** Installs Debian packages when this machine can (root with apt-get); false when it cannot. */
function aptInstall(packages, why) {
  if (process.env.PARLEY_SKIP_APT === '1' || process.getuid?.() !== 0 || !onPath('apt-get')) return false;
  console.log(`[parley] installing ${why} (${packages.join(', ')})…`);
  const run = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    }).status === 0;
  if (run()) return true;
  spawnSync('apt-get', ['update'], { stdio: 'inherit' });
  return run();
}

const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// The local speech engines (offline speech-to-text and text-to-speech for phone and browser calls)
// are Debian packages. Install them on first use when this machine can; otherwise say how.
const SPEECH_PACKAGES = ['espeak-ng', 'pocketsphinx', 'pocketsphinx-en-us'];
const speechReady =
  onPath('espeak-ng') &&
  onPath('pocketsphinx_continuous') &&
  fs.existsSync('/usr/share/pocketsphinx/model/en-us/en-us.lm.bin');
if (!speechReady && !aptInstall(SPEECH_PACKAGES, 'the local speech engines')) {
  if (process.getuid?.() === 0 && onPath('apt-get') && process.env.PARLEY_SKIP_APT !== '1') {
    console.error('[parley] could not install the speech engines with apt-get; voice calls need them.');
    process.exit(1);
  }
  console.warn(
    `[parley] the local speech engines are missing: install ${SPEECH_PACKAGES.join(' ')} ` +
      '(Debian/Ubuntu: sudo apt-get install …) for voice calls without cloud speech.',
  );
}

// The dashboard (React + Vite) is built into dashboard/dist, which the api serves.
if (!require('./build-dashboard.cjs').buildDashboardIfStale()) process.exit(1);

// The browser tests drive Debian's Chromium (never a downloaded browser): `npm test` installs it.
if (process.argv.includes('--test') && !fs.existsSync(chromiumPath())) {
  if (!aptInstall(['chromium'], "Debian's Chromium for the dashboard's browser tests")) {
    console.warn(
      '[parley] chromium is missing: install it (sudo apt-get install chromium) for the browser tests.',
    );
  }
}

function chromiumPath() {
  return process.env.CHROMIUM_PATH || '/usr/bin/chromium';
}
