'use strict';
// Presence for VS Code: reports this window's activity to the Presence desktop
// app over its local socket, and (bridge version 2, docs/bridge.md) shows your
// friends, your status and unread messages from it, lets you set your status,
// message a friend and sign in with the GitHub account VS Code already has.
// No network of its own, no runtime dependencies; when the desktop app is not
// running the friends view says so and offers to start it.

const vscode = require('vscode');
const { BridgeClient } = require('./lib/client');
const { socketPath } = require('./lib/endpoint');
const { Tracker } = require('./lib/tracker');
const { remoteResolver } = require('./lib/git');
const { DURATIONS, FriendsView, STATUS_LABELS, untilFor } = require('./lib/view');
const { Surface } = require('./lib/ui');
const { githubSession } = require('./lib/signin');
const { findDesktop, startDesktop } = require('./lib/desktop');

const REPLY_TIMEOUT_MS = 10_000;
const MAX_MESSAGE = 500;
const STATUSES = ['online', 'away', 'dnd', 'invisible'];

let running = null;
let view = null;
let surface = null;
let commandIds = 0;
const waiting = new Map();

function log(text) {
  console.debug(`[presence] ${text}`);
}

function onLine(line) {
  if ((line.type === 'result' || line.type === 'error') && line.id && waiting.has(line.id)) {
    const done = waiting.get(line.id);
    waiting.delete(line.id);
    done(line);
    return;
  }
  if (line.type === 'sign_in_request') {
    handOverSession(line.request);
    return;
  }
  if (line.type === 'sign_in_result') {
    if (line.ok) vscode.window.showInformationMessage(`Signed in to Presence as ${line.login}.`);
    else vscode.window.showErrorMessage(`${line.title || 'Sign-in failed'}: ${line.message || ''}`);
    return;
  }
  view.apply(line);
}

function onStatus(desktop) {
  view.setDesktop(desktop);
  if (desktop !== 'connected') {
    for (const [id, done] of waiting) {
      waiting.delete(id);
      done({ type: 'error', code: 'gone', message: 'The Presence app went away.' });
    }
  }
}

// A command to the desktop; resolves with its `result` or `error` line.
function request(message) {
  if (!running) return Promise.resolve({ type: 'error', code: 'disabled', message: 'Presence is disabled.' });
  commandIds += 1;
  const id = String(commandIds);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      resolve({ type: 'error', code: 'timeout', message: 'The Presence app did not answer.' });
    }, REPLY_TIMEOUT_MS);
    waiting.set(id, (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    if (!running.client.command({ ...message, id })) {
      clearTimeout(timer);
      waiting.delete(id);
      resolve({ type: 'error', code: 'absent', message: 'The Presence app is not running.' });
    }
  });
}

async function handOverSession(requestId) {
  const answer = await githubSession(vscode);
  if (!running) return;
  const line = { type: 'github_session' };
  if (requestId) line.request = requestId;
  if (answer.token) line.access_token = answer.token;
  else line.error = answer.error;
  running.client.command(line);
}

function start(context) {
  const client = new BridgeClient({
    path: socketPath(),
    hello: {
      editor: vscode.env.appName || 'Visual Studio Code',
      version: vscode.version,
      window: vscode.env.sessionId,
    },
    log,
    onLine,
    onStatus,
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
  if (view) view.setDesktop('absent');
}

function enabled() {
  return vscode.workspace.getConfiguration('presenceBridge').get('enabled', true);
}

function desktopAbsent() {
  return !view || view.desktop !== 'connected';
}

async function offerStart() {
  const choice = await vscode.window.showWarningMessage(
    'The Presence app is not running.',
    'Start Presence',
  );
  if (choice === 'Start Presence') await vscode.commands.executeCommand('presence.startDesktop');
}

async function showFailure(reply) {
  if (reply.type === 'error') await vscode.window.showErrorMessage(`Presence: ${reply.message}`);
}

const COMMANDS = {
  async 'presence.signIn'() {
    if (desktopAbsent()) return offerStart();
    if (view.signedIn) {
      return vscode.window.showInformationMessage(
        `Already signed in to Presence as ${view.state.me ? view.state.me.login : 'you'}.`,
      );
    }
    if (view.state && view.state.editor_sign_in) {
      // The person chose this: only now is VS Code asked for the GitHub session.
      return handOverSession('');
    }
    // This server does not take VS Code's account: the desktop's browser sign-in.
    return showFailure(await request({ type: 'sign_in' }));
  },

  async 'presence.setStatus'() {
    if (desktopAbsent()) return offerStart();
    if (!view.signedIn) return COMMANDS['presence.signIn']();
    const current = view.state.status;
    const status = await vscode.window.showQuickPick(
      STATUSES.map((id) => ({
        label: STATUS_LABELS[id],
        description: id === current ? 'current' : undefined,
        id,
      })),
      { placeHolder: 'Set your Presence status' },
    );
    if (!status) return undefined;
    let until = null;
    if (status.id !== 'online') {
      // The tray's choices; "online for an hour" means nothing, as in the tray.
      const duration = await vscode.window.showQuickPick(
        DURATIONS.map((d) => ({ label: d.label, id: d.id })),
        { placeHolder: `${status.label} for how long?` },
      );
      if (!duration) return undefined;
      until = untilFor(duration.id, Date.now() / 1000);
    }
    const line = { type: 'set_status', status: status.id };
    if (until !== null) line.until = until;
    return showFailure(await request(line));
  },

  async 'presence.messageFriend'(target) {
    if (desktopAbsent()) return offerStart();
    if (!view.signedIn) return COMMANDS['presence.signIn']();
    let friend = target && Number.isInteger(target.id) ? target : null;
    if (!friend) {
      const choices = view.friendChoices(Date.now() / 1000);
      if (!choices.length) {
        return vscode.window.showInformationMessage('No friends yet. Add some from the Presence app.');
      }
      friend = await vscode.window.showQuickPick(
        choices.map((c) => ({ label: c.label, description: c.description, id: c.id })),
        { placeHolder: 'Message which friend?', matchOnDescription: true },
      );
      if (!friend) return undefined;
    }
    const text = await vscode.window.showInputBox({
      prompt: `Message to ${friend.label}`,
      validateInput: (value) => {
        if (!value.trim()) return 'Type a message.';
        if (value.length > MAX_MESSAGE) return `At most ${MAX_MESSAGE} characters.`;
        return null;
      },
    });
    if (!text) return undefined;
    return showFailure(await request({ type: 'send_message', to: friend.id, text }));
  },

  async 'presence.openPopup'() {
    if (desktopAbsent()) return offerStart();
    return showFailure(await request({ type: 'open_popup' }));
  },

  async 'presence.startDesktop'() {
    if (!desktopAbsent()) return COMMANDS['presence.openPopup']();
    const configured = vscode.workspace.getConfiguration('presence').get('desktopCommand', '');
    const command = findDesktop(configured);
    if (!command) {
      return vscode.window.showWarningMessage(
        configured
          ? `The Presence app was not found at ${configured} (setting presence.desktopCommand).`
          : 'The Presence app is not installed (no presence-desktop on PATH). Install it, or set presence.desktopCommand.',
      );
    }
    try {
      startDesktop(command);
    } catch (err) {
      return vscode.window.showErrorMessage(`Presence could not be started: ${err.message}`);
    }
    return vscode.window.showInformationMessage('Starting Presence…');
  },
};

function activate(context) {
  view = new FriendsView();
  surface = new Surface(vscode, view);
  context.subscriptions.push(surface);
  for (const [id, fn] of Object.entries(COMMANDS)) {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  }
  if (enabled()) start(context);
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('presenceBridge.enabled')) return;
      if (enabled() && !running) start(context);
      else if (!enabled()) stop();
    }),
  );
  return { view };
}

function deactivate() {
  stop();
  if (surface) surface.dispose();
  surface = null;
}

module.exports = { activate, deactivate, COMMANDS };
