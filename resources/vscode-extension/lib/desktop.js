'use strict';
// Finding and starting the Presence desktop app when it is not running.
// Where it is installed: the `presence.desktopCommand` setting when set, else
// `presence-desktop` on PATH (what pipx, the Linux packages and the Windows
// installer provide). Started detached, so closing VS Code does not stop it.

const childProcess = require('child_process');
const fs = require('fs');
const path = require('path');

function findDesktop(configured, env = process.env, platform = process.platform, exists = isFile) {
  if (configured) return exists(configured) ? configured : null;
  const names = platform === 'win32' ? ['presence-desktop.exe'] : ['presence-desktop'];
  const dirs = String(env.PATH || env.Path || '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      if (exists(candidate)) return candidate;
    }
  }
  return null;
}

function isFile(candidate) {
  try {
    return fs.statSync(candidate).isFile();
  } catch {
    return false;
  }
}

function startDesktop(command, spawn = childProcess.spawn) {
  const child = spawn(command, [], { detached: true, stdio: 'ignore' });
  child.unref();
  return child;
}

module.exports = { findDesktop, startDesktop };
