'use strict';
// The whole extension, activated against the stub `vscode` module and a
// desktop stand-in on a real local socket.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const Module = require('module');
const net = require('net');
const os = require('os');
const path = require('path');
const { createStub } = require('../test-support/stub-vscode');

test('activate reports to the bridge and honours the enabled setting', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ext-test-'));
  const socketPath = path.join(dir, 'bridge.sock');
  process.env.PRESENCE_BRIDGE_SOCKET = socketPath;
  const stub = createStub({ folder: dir, appName: 'Visual Studio Code - Insiders' });
  const originalLoad = Module._load;
  Module._load = function load(request, ...rest) {
    if (request === 'vscode') return stub.vscode;
    return originalLoad.call(this, request, ...rest);
  };
  const lines = [];
  let notify = () => {};
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (message.type === 'hello') socket.write('{"type":"hello","bridge":1}\n');
        lines.push(message);
        notify();
      }
    });
  });
  await new Promise((resolve) => server.listen(socketPath, resolve));
  const until = async (predicate) => {
    while (!predicate()) await new Promise((resolve) => (notify = resolve));
  };
  const extension = require('../extension');
  const context = { subscriptions: [] };
  t.after(async () => {
    extension.deactivate();
    Module._load = originalLoad;
    delete process.env.PRESENCE_BRIDGE_SOCKET;
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  extension.activate(context);
  stub.open(path.join(dir, 'src', 'main.py'), 'python');
  stub.type();
  await until(() => lines.some((m) => m.type === 'activity' && m.kind === 'coding'));
  assert.equal(lines[0].type, 'hello');
  assert.equal(lines[0].editor, 'Visual Studio Code - Insiders');
  const coding = lines.find((m) => m.kind === 'coding');
  assert.equal(coding.file, 'main.py');
  assert.equal(coding.language, 'python');
  assert.equal(coding.folder, dir);

  stub.setEnabled(false);
  await until(() => lines.some((m) => m.type === 'bye'));
  const count = lines.length;
  stub.type();
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(lines.length, count, 'disabled: nothing is sent');
});
