'use strict';
// Runs the real extension against the stub `vscode` module for the desktop's
// end-to-end test (tests/desktop/activity/test_vscode_e2e.py):
//   node e2e.js <workspace-folder>
// It prints one JSON line per event on stdout — {"event":"view",...} whenever
// the friends view model changes, {"event":"message",...} for every message
// VS Code would show, {"event":"done","id":...} when a command finished — and
// reads JSON commands on stdin:
//   {"cmd":"session","token":"gho_…"}   what getSession will return from now on
//   {"cmd":"run","id":"1","command":"presence.setStatus","answers":[{"pick":"dnd"},{"pick":"Until I change it"}]}
//   {"cmd":"quit"}
// The GitHub token is never printed.

const Module = require('module');
const path = require('path');
const readline = require('readline');
const { createStub } = require('./stub-vscode');

const [folder] = process.argv.slice(2);
const stub = createStub({ folder });
const originalLoad = Module._load;
Module._load = function load(request, ...rest) {
  if (request === 'vscode') return stub.vscode;
  return originalLoad.call(this, request, ...rest);
};
const extension = require(path.join(__dirname, '..', 'extension.js'));

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const context = { subscriptions: [] };
const api = extension.activate(context);

async function snapshot() {
  const now = Date.now() / 1000;
  const tree = await stub.tree();
  emit({
    event: 'view',
    now,
    desktop: api.view.desktop,
    state: api.view.state,
    sections: api.view.sections(now),
    tree,
    statusBar: { text: stub.ui.statusBar[0].text, command: stub.ui.statusBar[0].command },
    contexts: stub.ui.contexts,
    sessionRequests: stub.ui.sessionRequests,
  });
}

api.view.onDidChange(() => {
  snapshot();
});
stub.ui.shown.event((text) => emit({ event: 'message', text }));

function answerFor(spec) {
  if (spec && typeof spec === 'object' && 'pick' in spec) {
    return (items) => items.find((item) => item.id === spec.pick || item.label === spec.pick);
  }
  return spec;
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', async (line) => {
  const message = JSON.parse(line);
  if (message.cmd === 'session') {
    stub.ui.session = { accessToken: message.token, account: { label: 'github' }, scopes: ['read:user'] };
  } else if (message.cmd === 'run') {
    stub.ui.answers.push(...(message.answers || []).map(answerFor));
    try {
      await stub.vscode.commands.executeCommand(message.command, ...(message.args || []));
      emit({ event: 'done', id: message.id });
    } catch (err) {
      emit({ event: 'done', id: message.id, error: String(err && err.message) });
    }
  } else if (message.cmd === 'quit') {
    extension.deactivate();
    for (const d of context.subscriptions) d.dispose();
    setTimeout(() => process.exit(0), 50);
  }
});
input.on('close', () => {
  extension.deactivate();
  setTimeout(() => process.exit(0), 50);
});
emit({ event: 'ready' });
snapshot();
