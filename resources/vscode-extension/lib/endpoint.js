'use strict';
// Where the desktop app listens. The same rule is written in docs/bridge.md
// and in presence_desktop/net/bridge.py; change all three together.

const os = require('os');
const path = require('path');

const ENV_ADDRESS = 'PRESENCE_BRIDGE_SOCKET';

function userTag(name) {
  const tag = String(name || '').toLowerCase().replace(/[^a-z0-9_.-]/g, '_').slice(0, 64);
  return tag || 'user';
}

function socketPath(env = process.env, platform = process.platform, info = {}) {
  if (env[ENV_ADDRESS]) return env[ENV_ADDRESS];
  if (platform === 'win32') {
    const username = info.username !== undefined ? info.username : os.userInfo().username;
    return `\\\\.\\pipe\\presence-desktop-bridge-${userTag(username)}`;
  }
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && path.isAbsolute(runtime)) {
    return path.join(runtime, 'presence-desktop', 'bridge.sock');
  }
  const uid = info.uid !== undefined ? info.uid : process.getuid();
  const tmp = info.tmpdir !== undefined ? info.tmpdir : os.tmpdir();
  return path.join(tmp, `presence-desktop-${uid}`, 'bridge.sock');
}

module.exports = { socketPath, userTag, ENV_ADDRESS };
