'use strict';
// Presence Bridge: reports this window's activity to the Presence desktop
// app over its local socket (docs/bridge.md). No network, no UI, no runtime
// dependencies; when the desktop app is not running it stays silent.

const vscode = require('vscode');
const { BridgeClient } = require('./lib/client');
const { socketPath } = require('./lib/endpoint');
const { Tracker } = require('./lib/tracker');
const { remoteResolver } = require('./lib/git');

let running = null;

function start(context) {
  const client = new BridgeClient({
    path: socketPath(),
    hello: {
      editor: vscode.env.appName || 'Visual Studio Code',
      version: vscode.version,
      window: vscode.env.sessionId,
    },
    log: (text) => console.debug(`[presence-bridge] ${text}`),
  });
  const tracker = new Tracker(vscode, (state) => client.send(state), {
    remoteOf: remoteResolver(vscode),
  });
  client.start();
  tracker.start();
  running = { client, tracker };
  context.subscriptions.push({ dispose: stop });
}

function stop() {
  if (!running) return;
  running.tracker.stop();
  running.client.stop();
  running = null;
}

function enabled() {
  return vscode.workspace.getConfiguration('presenceBridge').get('enabled', true);
}

function activate(context) {
  if (enabled()) start(context);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('presenceBridge.enabled')) return;
      if (enabled() && !running) start(context);
      else if (!enabled()) stop();
    }),
  );
}

function deactivate() {
  stop();
}

module.exports = { activate, deactivate };
