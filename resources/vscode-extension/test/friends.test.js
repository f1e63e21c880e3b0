'use strict';
// The whole extension (bridge version 2) against the stub `vscode` module and a
// desktop stand-in on a real local socket: the friends tree, the status bar,
// the palette commands and the GitHub sign-in hand-over.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const Module = require('module');
const net = require('net');
const os = require('os');
const path = require('path');
const { createStub } = require('../test-support/stub-vscode');

const SIGNED_OUT = {
  type: 'state', link: 'signed_out', signed_in: false, me: null, status: 'online', until: null,
  unread: 0, online: 0, friends: 0, editor_sign_in: true, waiting_for_editor: false,
};
const SIGNED_IN = {
  ...SIGNED_OUT, link: 'online', signed_in: true, me: { id: 1, login: 'ada', name: 'Ada' },
  online: 1, friends: 2, editor_sign_in: false,
};
const FRIENDS = {
  type: 'friends',
  friends: [
    { id: 2, login: 'bob', name: 'Bob', status: 'online', section: 'online', activity: null, last_seen: null, until: null, sort: [0, 0, 'bob'] },
    { id: 3, login: 'cy', name: null, status: 'offline', section: 'offline', activity: null, last_seen: null, until: null, sort: [3, 0, 'cy'] },
  ],
};

// A version-2 desktop stand-in: answers hello, records lines, can push lines.
function fakeDesktop(socketPath, onJoin) {
  const lines = [];
  const waiters = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        lines.push(message);
        if (message.type === 'hello') {
          socket.write(`${JSON.stringify({ type: 'hello', bridge: 2, features: ['friends'] })}\n`);
          for (const line of onJoin()) socket.write(`${JSON.stringify(line)}\n`);
        } else if (message.id && message.type !== 'github_session') {
          socket.write(`${JSON.stringify({ type: 'result', id: message.id, ok: true })}\n`);
        }
        for (const w of waiters.splice(0)) w();
      }
    });
  });
  return {
    lines,
    push(line) {
      for (const s of sockets) s.write(`${JSON.stringify(line)}\n`);
    },
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
}

let api = null;
let stubShown = null;

// Waits for the view model to change until `predicate` holds (5 s hang guard).
async function eventually(predicate) {
  const deadline = Date.now() + 5000;
  while (!(await predicate())) {
    assert.ok(Date.now() < deadline, 'condition not reached');
    await new Promise((resolve) => {
      const done = () => {
        sub.dispose();
        shown.dispose();
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, 5000);
      const sub = api.view.onDidChange(done);
      const shown = stubShown.event(done);
    });
  }
}

function setUp(t, options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'friends-test-'));
  const socketPath = path.join(dir, 'bridge.sock');
  process.env.PRESENCE_BRIDGE_SOCKET = socketPath;
  const stub = createStub({ folder: dir, ...options });
  stubShown = stub.ui.shown;
  const originalLoad = Module._load;
  Module._load = function load(request, ...rest) {
    if (request === 'vscode') return stub.vscode;
    return originalLoad.call(this, request, ...rest);
  };
  delete require.cache[require.resolve('../extension')];
  const extension = require('../extension');
  const context = { subscriptions: [] };
  t.after(() => {
    extension.deactivate();
    for (const d of context.subscriptions) d.dispose();
    Module._load = originalLoad;
    delete process.env.PRESENCE_BRIDGE_SOCKET;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { stub, extension, context, socketPath, dir };
}

test('without the desktop the view says so and offers to start it', async (t) => {
  const { stub, extension, context } = setUp(t, { settings: { 'presence.desktopCommand': '/nowhere/presence-desktop' } });
  api = extension.activate(context);
  const tree = await stub.tree();
  assert.deepEqual(tree.items, []);
  assert.equal(stub.ui.contexts['presence.desktop'], 'absent'); // the welcome view's "Start Presence"
  const bar = stub.ui.statusBar[0];
  assert.equal(bar.text, '○ Presence');
  assert.equal(bar.command, 'presence.startDesktop');
  await stub.vscode.commands.executeCommand('presence.startDesktop');
  assert.match(stub.ui.messages.at(-1).text, /not found at \/nowhere\/presence-desktop/);
  stub.ui.answers.push(undefined);
  await stub.vscode.commands.executeCommand('presence.setStatus');
  assert.equal(stub.ui.messages.at(-1).text, 'The Presence app is not running.');
  assert.deepEqual(stub.ui.messages.at(-1).buttons, ['Start Presence']);
});

test('friends tree, status bar and live deltas', async (t) => {
  const { stub, extension, context, socketPath } = setUp(t);
  const desktop = fakeDesktop(socketPath, () => [FRIENDS, SIGNED_IN]);
  await desktop.listen();
  t.after(() => desktop.close());
  api = extension.activate(context);
  await eventually(async () => (await stub.tree()).items.length === 2);
  const tree = await stub.tree();
  assert.deepEqual(tree.items, [
    { label: 'Online (1)', description: undefined, children: [{ label: 'Bob', description: 'Online' }] },
    { label: 'Offline (1)', description: undefined, children: [{ label: 'cy', description: 'Offline' }] },
  ]);
  assert.equal(stub.ui.statusBar[0].text, '● Online · 1 friend');
  assert.equal(stub.ui.statusBar[0].command, 'presence.setStatus');
  assert.equal(desktop.lines[0].bridge, 2);

  desktop.push({ type: 'friend', friend: { ...FRIENDS.friends[1], status: 'away', section: 'away' } });
  desktop.push({ type: 'state', ...SIGNED_IN, online: 2, unread: 1 });
  await eventually(() => stub.ui.statusBar[0].text === '● Online · 2 friends · 1 unread');
  assert.deepEqual((await stub.tree()).items.map((s) => s.label), ['Online (1)', 'Away (1)']);

  await desktop.close();
  await eventually(() => stub.ui.contexts['presence.desktop'] === 'absent');
  assert.deepEqual((await stub.tree()).items, []);
});

test('palette commands become bridge commands', async (t) => {
  const { stub, extension, context, socketPath } = setUp(t);
  const desktop = fakeDesktop(socketPath, () => [FRIENDS, SIGNED_IN]);
  await desktop.listen();
  t.after(() => desktop.close());
  api = extension.activate(context);
  await eventually(() => stub.ui.contexts['presence.signedIn'] === true);
  const run = (id, ...args) => stub.vscode.commands.executeCommand(id, ...args);

  stub.ui.answers.push(
    (items) => items.find((i) => i.id === 'dnd'),
    (items) => items.find((i) => i.label === 'For 1 hour'),
  );
  await run('presence.setStatus');
  const status = desktop.lines.find((l) => l.type === 'set_status');
  assert.equal(status.status, 'dnd');
  assert.ok(status.until > Date.now() / 1000 + 3500 && status.until < Date.now() / 1000 + 3700);

  stub.ui.answers.push((items) => items.find((i) => i.id === 2), 'see you at 3?');
  await run('presence.messageFriend');
  assert.deepEqual(
    desktop.lines.filter((l) => l.type === 'send_message').map(({ to, text }) => ({ to, text })),
    [{ to: 2, text: 'see you at 3?' }],
  );
  stub.ui.answers.push('x'.repeat(501)); // over the limit: refused by the input box, nothing sent
  await run('presence.messageFriend', { id: 3, label: 'cy' });
  assert.equal(desktop.lines.filter((l) => l.type === 'send_message').length, 1);

  await run('presence.openPopup');
  assert.ok(desktop.lines.some((l) => l.type === 'open_popup'));
  await run('presence.signIn');
  assert.equal(stub.ui.messages.at(-1).text, 'Already signed in to Presence as ada.');
  assert.equal(stub.ui.sessionRequests.length, 0, 'VS Code is never asked for GitHub unprompted');
});

test('the tray asks: VS Code is asked for GitHub then, and the token goes to the desktop once', async (t) => {
  const { stub, extension, context, socketPath } = setUp(t, {
    session: { accessToken: 'gho_fromvscode', account: { label: 'ada' }, scopes: ['read:user'] },
  });
  const desktop = fakeDesktop(socketPath, () => [{ type: 'friends', friends: [] }, SIGNED_OUT]);
  await desktop.listen();
  t.after(() => desktop.close());
  api = extension.activate(context);
  await eventually(() => stub.ui.contexts['presence.editorSignIn'] === true);
  assert.equal(stub.ui.sessionRequests.length, 0, 'not before the person chose it');

  desktop.push({ type: 'sign_in_request', request: 'r1' });
  const lines = await desktop.until((l) => l.some((m) => m.type === 'github_session'));
  assert.deepEqual(stub.ui.sessionRequests, [
    { providerId: 'github', scopes: ['read:user'], options: { createIfNone: true } },
  ]);
  const handed = lines.filter((m) => m.type === 'github_session');
  assert.deepEqual(handed, [{ type: 'github_session', request: 'r1', access_token: 'gho_fromvscode' }]);

  desktop.push({ type: 'sign_in_result', ok: true, login: 'ada' });
  await eventually(() => stub.ui.messages.some((m) => m.text === 'Signed in to Presence as ada.'));
  assert.ok(!JSON.stringify(stub.ui.messages).includes('gho_'), 'the token is never shown');
});

test('"Presence: Sign in" starts it from VS Code; cancelling there sends no token', async (t) => {
  const { stub, extension, context, socketPath } = setUp(t);
  const desktop = fakeDesktop(socketPath, () => [{ type: 'friends', friends: [] }, SIGNED_OUT]);
  await desktop.listen();
  t.after(() => desktop.close());
  api = extension.activate(context);
  await eventually(() => stub.ui.contexts['presence.editorSignIn'] === true);

  stub.ui.session = new Error('User did not consent to login.');
  await stub.vscode.commands.executeCommand('presence.signIn');
  await desktop.until((l) => l.some((m) => m.type === 'github_session'));
  assert.deepEqual(desktop.lines.filter((m) => m.type === 'github_session'), [
    { type: 'github_session', error: 'cancelled' },
  ]);

  stub.ui.session = { accessToken: 'gho_second', account: { label: 'ada' } };
  await stub.vscode.commands.executeCommand('presence.signIn');
  await desktop.until((l) => l.filter((m) => m.type === 'github_session').length === 2);
  assert.deepEqual(desktop.lines.filter((m) => m.type === 'github_session').at(-1), {
    type: 'github_session',
    access_token: 'gho_second',
  });

  // A server that does not take VS Code's account: the desktop's browser sign-in instead.
  desktop.push({ ...SIGNED_OUT, editor_sign_in: false });
  await eventually(() => stub.ui.contexts['presence.editorSignIn'] === false);
  const asked = stub.ui.sessionRequests.length;
  await stub.vscode.commands.executeCommand('presence.signIn');
  assert.ok(desktop.lines.some((m) => m.type === 'sign_in'));
  assert.equal(stub.ui.sessionRequests.length, asked);
});
