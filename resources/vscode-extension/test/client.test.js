'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { BridgeClient, backoffDelays } = require('../lib/client');

function tempSocket(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bridge-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'bridge.sock');
}

// A desktop stand-in: answers hello and records every line it gets.
function fakeDesktop(socketPath) {
  const lines = [];
  const waiters = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (message.type === 'hello') socket.write('{"type":"hello","bridge":1}\n');
        lines.push(message);
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  const desktop = {
    lines,
    listen: () => new Promise((resolve) => server.listen(socketPath, resolve)),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(resolve);
      }),
    async until(predicate) {
      while (!predicate(lines)) await new Promise((resolve) => waiters.push(resolve));
      return lines;
    },
  };
  return desktop;
}

const hello = { editor: 'Visual Studio Code', version: '1.95.0', window: 'w1' };

test('hello first, then the latest activity, then bye', async (t) => {
  const socketPath = tempSocket(t);
  const desktop = fakeDesktop(socketPath);
  await desktop.listen();
  t.after(() => desktop.close());
  const client = new BridgeClient({ path: socketPath, hello });
  client.send({ workspace: 'early', kind: 'reading' }); // before connecting: kept
  client.send({ workspace: 'api', kind: 'coding', focused: true });
  client.start();
  await desktop.until((l) => l.length >= 2);
  assert.deepEqual(desktop.lines[0], { type: 'hello', bridge: 2, ...hello });
  assert.deepEqual(desktop.lines[1], { type: 'activity', workspace: 'api', kind: 'coding', focused: true });
  client.send({ workspace: 'api', kind: 'reading', file: 'x'.repeat(10000) });
  await desktop.until((l) => l.length >= 3);
  assert.equal(desktop.lines[2].file.length, 4096, 'fields are clipped to the documented limit');
  client.stop();
  await desktop.until((l) => l.length >= 4);
  assert.equal(desktop.lines[3].type, 'bye');
});

test('silent while the desktop is absent, connects when it starts later', async (t) => {
  const socketPath = tempSocket(t);
  const logs = [];
  const delays = { next: () => 20, reset() {} };
  const client = new BridgeClient({ path: socketPath, hello, delays, log: (m) => logs.push(m) });
  client.send({ workspace: 'later', kind: 'coding' });
  client.start();
  t.after(() => client.stop());
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(logs.length >= 1, 'failed attempts are only logged');
  assert.ok(logs.every((m) => m.startsWith('bridge: ')));
  const desktop = fakeDesktop(socketPath);
  await desktop.listen();
  t.after(() => desktop.close());
  await desktop.until((l) => l.some((m) => m.type === 'activity'));
  assert.equal(desktop.lines.find((m) => m.type === 'activity').workspace, 'later');
});

test('reconnects after the desktop restarts', async (t) => {
  const socketPath = tempSocket(t);
  let desktop = fakeDesktop(socketPath);
  await desktop.listen();
  const delays = { next: () => 20, reset() {} };
  const client = new BridgeClient({ path: socketPath, hello, delays });
  client.send({ workspace: 'api', kind: 'coding' });
  client.start();
  t.after(() => client.stop());
  await desktop.until((l) => l.length >= 2);
  await desktop.close();
  desktop = fakeDesktop(socketPath);
  await desktop.listen();
  t.after(() => desktop.close());
  await desktop.until((l) => l.length >= 2);
  assert.deepEqual(desktop.lines.map((m) => m.type), ['hello', 'activity']);
});

test('a desktop refusing version 2 gets version 1; refusing that too stops retrying', async (t) => {
  const socketPath = tempSocket(t);
  const announced = [];
  const server = net.createServer((s) => {
    s.setEncoding('utf8');
    s.once('data', (chunk) => {
      announced.push(JSON.parse(chunk.split('\n')[0]).bridge);
      s.end('{"type":"error","code":"unsupported_version","message":"old desktop"}\n');
    });
  });
  await new Promise((resolve) => server.listen(socketPath, resolve));
  t.after(() => server.close());
  let attempts = 0;
  const client = new BridgeClient({
    path: socketPath,
    hello,
    delays: { next: () => 10, reset() {} },
    connect: (p) => {
      attempts += 1;
      return net.createConnection(p);
    },
  });
  client.start();
  await new Promise((resolve) => setTimeout(resolve, 150));
  client.stop();
  assert.equal(attempts, 2);
  assert.deepEqual(announced, [2, 1]);
});

test('backoff doubles up to a minute', () => {
  const d = backoffDelays(1000, 60000);
  const values = Array.from({ length: 9 }, () => d.next());
  assert.ok(values[0] >= 800 && values[0] <= 1000);
  assert.ok(values[3] >= 6400 && values[3] <= 8000);
  assert.ok(values.at(-1) >= 48000 && values.at(-1) <= 60000);
  d.reset();
  assert.ok(d.next() <= 1000);
});
