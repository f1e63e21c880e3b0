'use strict';
// package.json and the code agree: every contributed command has a handler and
// every handler is contributed; the view and its container exist; files exist.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const Module = require('module');
const { createStub } = require('../test-support/stub-vscode');

const root = path.join(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

test('contributed commands and handlers match, and the palette names are the documented ones', () => {
  const stub = createStub();
  const originalLoad = Module._load;
  Module._load = function load(request, ...rest) {
    if (request === 'vscode') return stub.vscode;
    return originalLoad.call(this, request, ...rest);
  };
  try {
    const { COMMANDS } = require('../extension');
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual(contributed, Object.keys(COMMANDS).sort());
  } finally {
    Module._load = originalLoad;
  }
  const titles = manifest.contributes.commands.map((c) => `${c.category}: ${c.title}`);
  for (const wanted of ['Presence: Sign in', 'Presence: Set status', 'Presence: Message a friend', 'Presence: Open the friends popup']) {
    assert.ok(titles.includes(wanted), wanted);
  }
});

test('the view lives in its own activity-bar container and its files are there', () => {
  const [container] = manifest.contributes.viewsContainers.activitybar;
  assert.equal(container.id, 'presence');
  assert.deepEqual(manifest.contributes.views.presence.map((v) => v.id), ['presence.friends']);
  for (const file of [container.icon, manifest.icon, 'README.md', 'CHANGELOG.md', 'LICENSE', 'media/friends-view.png']) {
    assert.ok(fs.existsSync(path.join(root, file)), file);
  }
  const png = fs.readFileSync(path.join(root, manifest.icon));
  assert.equal(png.readUInt32BE(16), 128, 'icon width');
  assert.equal(png.readUInt32BE(20), 128, 'icon height');
  const welcome = manifest.contributes.viewsWelcome.map((w) => w.contents).join('\n');
  assert.match(welcome, /\(command:presence\.startDesktop\)/);
});
