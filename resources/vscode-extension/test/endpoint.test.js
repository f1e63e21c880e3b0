'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { socketPath, userTag } = require('../lib/endpoint');

test('the override wins everywhere', () => {
  assert.equal(socketPath({ PRESENCE_BRIDGE_SOCKET: '/x/y.sock' }, 'linux', { uid: 1 }), '/x/y.sock');
  assert.equal(socketPath({ PRESENCE_BRIDGE_SOCKET: 'p' }, 'win32', { username: 'a' }), 'p');
});

test('linux uses the runtime dir, else a per-uid temp dir', () => {
  assert.equal(
    socketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }, 'linux', { uid: 1000 }),
    '/run/user/1000/presence-desktop/bridge.sock',
  );
  assert.equal(
    socketPath({ XDG_RUNTIME_DIR: 'relative' }, 'linux', { uid: 1000, tmpdir: '/tmp' }),
    '/tmp/presence-desktop-1000/bridge.sock',
  );
  assert.equal(
    socketPath({}, 'darwin', { uid: 501, tmpdir: '/var/folders/ab/T' }),
    '/var/folders/ab/T/presence-desktop-501/bridge.sock',
  );
});

test('windows uses a named pipe per user', () => {
  assert.equal(
    socketPath({}, 'win32', { username: 'Ada Lovelace' }),
    '\\\\.\\pipe\\presence-desktop-bridge-ada_lovelace',
  );
  assert.equal(userTag(''), 'user');
});
