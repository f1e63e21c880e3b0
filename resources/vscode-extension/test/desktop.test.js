'use strict';
// Finding and starting the desktop app when it is not running.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { findDesktop, startDesktop } = require('../lib/desktop');

test('the setting wins; otherwise presence-desktop on PATH; otherwise nothing', () => {
  const exists = (p) => ['/opt/presence/presence-desktop', '/usr/local/bin/presence-desktop', 'C:\\Apps\\presence-desktop.exe'].includes(p);
  assert.equal(findDesktop('/opt/presence/presence-desktop', {}, 'linux', exists), '/opt/presence/presence-desktop');
  assert.equal(findDesktop('/missing/presence-desktop', { PATH: '/usr/local/bin' }, 'linux', exists), null);
  assert.equal(findDesktop('', { PATH: ['/usr/bin', '/usr/local/bin'].join(path.delimiter) }, 'linux', exists), '/usr/local/bin/presence-desktop');
  assert.equal(findDesktop('', { PATH: '' }, 'linux', exists), null);
});

test('a found app is started, detached from VS Code', { skip: process.platform === 'win32' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'desktop-start-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'started');
  const app = path.join(dir, 'presence-desktop');
  fs.writeFileSync(app, `#!/bin/sh\necho started > "${marker}"\n`, { mode: 0o755 });
  const written = new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error('the app did not start')), 10_000);
    const watcher = fs.watch(dir, () => {
      if (fs.existsSync(marker) && fs.readFileSync(marker, 'utf8') === 'started\n') {
        clearTimeout(guard);
        watcher.close();
        resolve();
      }
    });
  });
  const child = startDesktop(findDesktop('', { PATH: dir }));
  assert.equal(child.spawnargs[0], app);
  await written;
});
