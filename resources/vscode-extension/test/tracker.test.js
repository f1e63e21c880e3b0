'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Tracker, MIN_INTERVAL_MS, CODING_MS, REPEAT_MS } = require('../lib/tracker');
const { createStub, FakeTimers } = require('../test-support/stub-vscode');

function setup(options = {}) {
  const stub = createStub({ folder: '/home/ada/src/api', ...options });
  const timers = new FakeTimers();
  const sent = [];
  const tracker = new Tracker(stub.vscode, (s) => sent.push(s), {
    timers,
    now: timers.clock,
    remoteOf: () => 'git@github.com:acme/api.git',
  });
  tracker.start();
  return { stub, timers, sent, tracker };
}

test('reports workspace, folder, remote, file name, language and focus', () => {
  const { stub, timers, sent } = setup();
  stub.open('/home/ada/src/api/handlers/users.py', 'python');
  timers.advance(MIN_INTERVAL_MS);
  assert.deepEqual(sent.at(-1), {
    workspace: 'api',
    folder: '/home/ada/src/api',
    git_remote: 'git@github.com:acme/api.git',
    file: 'users.py',
    language: 'python',
    kind: 'reading',
    focused: true,
  });
  assert.ok(!JSON.stringify(sent).includes('handlers'), 'the file path never leaves');
});

test('edits mean coding at once, and reading again after a quiet spell', () => {
  const { stub, timers, sent } = setup();
  stub.open('/home/ada/src/api/a.py', 'python');
  timers.advance(500);
  const before = sent.length;
  stub.type();
  assert.equal(sent.length, before + 1, 'a kind change is not debounced');
  assert.equal(sent.at(-1).kind, 'coding');
  for (let i = 0; i < 20; i++) {
    timers.advance(100);
    stub.type();
  }
  assert.equal(sent.length, before + 1, 'typing in the same file sends nothing new');
  timers.advance(CODING_MS);
  assert.equal(sent.at(-1).kind, 'reading');
});

test('at most one update every 2 s unless the kind changes', () => {
  const { stub, timers, sent } = setup();
  stub.open('/a/one.py', 'python');
  const base = sent.length;
  timers.advance(100);
  stub.open('/a/two.rs', 'rust');
  stub.open('/a/three.go', 'go');
  assert.equal(sent.length, base, 'file switches inside the interval wait');
  timers.advance(MIN_INTERVAL_MS);
  assert.equal(sent.length, base + 1);
  assert.equal(sent.at(-1).file, 'three.go', 'only the latest state is sent');
  stub.startDebugging();
  assert.equal(sent.length, base + 2);
  assert.equal(sent.at(-1).kind, 'debugging');
  stub.stopDebugging();
  assert.equal(sent.at(-1).kind, 'reading');
});

test('window focus is reported at once', () => {
  const { stub, timers, sent } = setup();
  stub.open('/a/one.py', 'python');
  timers.advance(10);
  stub.focus(false);
  assert.equal(sent.at(-1).focused, false);
  stub.focus(true);
  assert.equal(sent.at(-1).focused, true);
});

test('unchanged state is repeated once a minute while I interact, never when idle', () => {
  const { stub, timers, sent } = setup();
  stub.open('/a/one.py', 'python');
  timers.advance(MIN_INTERVAL_MS);
  const base = sent.length;
  timers.advance(REPEAT_MS / 2);
  stub.events.selection.fire({});
  assert.equal(sent.length, base);
  timers.advance(REPEAT_MS / 2);
  stub.events.selection.fire({});
  assert.equal(sent.length, base + 1);
  timers.advance(REPEAT_MS * 10);
  assert.equal(sent.length, base + 1);
});

test('output panels and untitled files', () => {
  const { stub, timers, sent } = setup();
  const doc = stub.open('/a/one.py', 'python');
  timers.advance(MIN_INTERVAL_MS);
  stub.events.textChange.fire({
    document: { ...doc, uri: { scheme: 'output', fsPath: 'x' } },
    contentChanges: [{}],
  });
  assert.equal(sent.at(-1).kind, 'reading', 'output panels are not my typing');
  stub.vscode.window.activeTextEditor = {
    document: {
      uri: { scheme: 'untitled', fsPath: 'Untitled-1' },
      fileName: 'Untitled-1',
      languageId: 'plaintext',
      isUntitled: true,
    },
  };
  stub.events.activeEditor.fire();
  timers.advance(MIN_INTERVAL_MS);
  assert.equal(sent.at(-1).file, 'Untitled');
  assert.equal(sent.at(-1).language, 'plaintext');
});

test('stop removes every listener and timer', () => {
  const { stub, timers, tracker } = setup();
  stub.open('/a/one.py', 'python');
  stub.type();
  stub.open('/a/two.py', 'python');
  assert.ok(timers.queue.length > 0);
  tracker.stop();
  for (const emitter of Object.values(stub.events)) {
    if (emitter !== stub.events.config) assert.equal(emitter.listeners.size, 0);
  }
  assert.equal(timers.queue.length, 0);
});
