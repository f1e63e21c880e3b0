'use strict';
// A small stand-in for the `vscode` module: just the events and state the
// extension reads, driven by the tests.

const path = require('path');

class Emitter {
  constructor() {
    this.listeners = new Set();
    this.event = (fn) => {
      this.listeners.add(fn);
      return { dispose: () => this.listeners.delete(fn) };
    };
  }

  fire(value) {
    for (const fn of [...this.listeners]) fn(value);
  }
}

function uri(fsPath, scheme = 'file') {
  return { scheme, fsPath, path: fsPath };
}

// Records what the extension draws and asks, and answers its questions from
// `answers` (quick picks, input boxes, message buttons) in order.
class TreeItem {
  constructor(label, collapsibleState) {
    this.label = label;
    this.collapsibleState = collapsibleState;
  }
}

class ThemeIcon {
  constructor(id, color) {
    this.id = id;
    this.color = color;
  }
}

class ThemeColor {
  constructor(id) {
    this.id = id;
  }
}

class EventEmitter extends Emitter {
  dispose() {
    this.listeners.clear();
  }
}

function createStub(options = {}) {
  const events = {
    activeEditor: new Emitter(),
    windowState: new Emitter(),
    selection: new Emitter(),
    textChange: new Emitter(),
    folders: new Emitter(),
    config: new Emitter(),
    debugStart: new Emitter(),
    debugEnd: new Emitter(),
    debugActive: new Emitter(),
  };
  const settings = { 'presenceBridge.enabled': true, ...(options.settings || {}) };
  const ui = {
    trees: new Map(),
    statusBar: [],
    messages: [],
    picks: [],
    inputs: [],
    contexts: {},
    answers: [],
    sessionRequests: [],
    shown: new Emitter(), // fires after every message shown
    session: options.session === undefined ? null : options.session,
  };
  const commands = new Map();
  const answer = (kind, value) => {
    const next = ui.answers.shift();
    if (next === undefined) return undefined;
    return typeof next === 'function' ? next(value) : next;
  };
  const folder = options.folder
    ? { name: path.basename(options.folder), uri: uri(options.folder), index: 0 }
    : null;
  const vscode = {
    version: '1.95.0',
    env: { appName: options.appName || 'Visual Studio Code', sessionId: 'session-1' },
    window: {
      activeTextEditor: undefined,
      state: { focused: true },
      onDidChangeActiveTextEditor: events.activeEditor.event,
      onDidChangeWindowState: events.windowState.event,
      onDidChangeTextEditorSelection: events.selection.event,
      createTreeView(id, { treeDataProvider }) {
        const view = { id, provider: treeDataProvider, message: undefined, dispose() {} };
        ui.trees.set(id, view);
        return view;
      },
      createStatusBarItem(alignment, priority) {
        const item = {
          alignment,
          priority,
          text: '',
          tooltip: '',
          command: undefined,
          visible: false,
          show() {
            this.visible = true;
          },
          hide() {
            this.visible = false;
          },
          dispose() {},
        };
        ui.statusBar.push(item);
        return item;
      },
      async showQuickPick(items, pickOptions) {
        const list = await items;
        ui.picks.push({ items: list, options: pickOptions });
        return answer('pick', list);
      },
      async showInputBox(inputOptions) {
        ui.inputs.push(inputOptions);
        const value = answer('input', inputOptions);
        if (value !== undefined && inputOptions && inputOptions.validateInput) {
          const problem = inputOptions.validateInput(value);
          if (problem) return undefined;
        }
        return value;
      },
      async showInformationMessage(text, ...buttons) {
        ui.messages.push({ level: 'info', text, buttons });
        ui.shown.fire(text);
        return buttons.length ? answer('button', buttons) : undefined;
      },
      async showWarningMessage(text, ...buttons) {
        ui.messages.push({ level: 'warning', text, buttons });
        ui.shown.fire(text);
        return buttons.length ? answer('button', buttons) : undefined;
      },
      async showErrorMessage(text, ...buttons) {
        ui.messages.push({ level: 'error', text, buttons });
        ui.shown.fire(text);
        return buttons.length ? answer('button', buttons) : undefined;
      },
    },
    commands: {
      registerCommand(id, fn) {
        commands.set(id, fn);
        return { dispose: () => commands.delete(id) };
      },
      async executeCommand(id, ...args) {
        if (id === 'setContext') {
          ui.contexts[args[0]] = args[1];
          return undefined;
        }
        const fn = commands.get(id);
        if (!fn) throw new Error(`command '${id}' not found`);
        return fn(...args);
      },
    },
    authentication: {
      async getSession(providerId, scopes, sessionOptions) {
        ui.sessionRequests.push({ providerId, scopes, options: sessionOptions });
        const session = typeof ui.session === 'function' ? await ui.session() : ui.session;
        if (session instanceof Error) throw session;
        return session || undefined;
      },
    },
    TreeItem,
    ThemeIcon,
    ThemeColor,
    EventEmitter,
    TreeItemCollapsibleState: { None: 0, Collapsed: 1, Expanded: 2 },
    StatusBarAlignment: { Left: 1, Right: 2 },
    workspace: {
      name: folder ? folder.name : undefined,
      workspaceFolders: folder ? [folder] : undefined,
      getWorkspaceFolder: () => folder || undefined,
      onDidChangeTextDocument: events.textChange.event,
      onDidChangeWorkspaceFolders: events.folders.event,
      onDidChangeConfiguration: events.config.event,
      getConfiguration: (section) => ({
        get: (key, fallback) => {
          const value = settings[`${section}.${key}`];
          return value === undefined ? fallback : value;
        },
      }),
    },
    debug: {
      activeDebugSession: undefined,
      onDidStartDebugSession: events.debugStart.event,
      onDidTerminateDebugSession: events.debugEnd.event,
      onDidChangeActiveDebugSession: events.debugActive.event,
    },
    extensions: { getExtension: () => undefined },
  };

  const control = {
    vscode,
    events,
    settings,
    ui,
    commands,
    // The tree as drawn: [{label, description, children: [...]}].
    async tree(id = 'presence.friends') {
      const view = ui.trees.get(id);
      if (!view) return null;
      const draw = async (element) => {
        const children = (await view.provider.getChildren(element)) || [];
        const out = [];
        for (const child of children) {
          const item = await view.provider.getTreeItem(child);
          const node = { label: item.label, description: item.description };
          if (item.collapsibleState) node.children = await draw(child);
          out.push(node);
        }
        return out;
      };
      return { message: view.message, items: await draw(undefined) };
    },
    open(fileName, languageId) {
      const document = {
        uri: uri(fileName),
        fileName,
        languageId,
        isUntitled: false,
      };
      vscode.window.activeTextEditor = { document };
      events.activeEditor.fire(vscode.window.activeTextEditor);
      return document;
    },
    type(document = vscode.window.activeTextEditor.document) {
      events.textChange.fire({ document, contentChanges: [{ text: 'x' }] });
    },
    focus(focused) {
      vscode.window.state = { focused };
      events.windowState.fire(vscode.window.state);
    },
    startDebugging() {
      vscode.debug.activeDebugSession = { id: 'dbg' };
      events.debugStart.fire(vscode.debug.activeDebugSession);
    },
    stopDebugging() {
      const session = vscode.debug.activeDebugSession;
      vscode.debug.activeDebugSession = undefined;
      events.debugEnd.fire(session);
    },
    setEnabled(value) {
      settings['presenceBridge.enabled'] = value;
      events.config.fire({ affectsConfiguration: (key) => key === 'presenceBridge.enabled' });
    },
  };
  return control;
}

class FakeTimers {
  constructor() {
    this.now = 1_000_000;
    this.queue = [];
    this.ids = 0;
    this.setTimeout = (fn, ms) => {
      const id = ++this.ids;
      this.queue.push({ id, at: this.now + ms, fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.queue = this.queue.filter((t) => t.id !== id);
    };
    this.clock = () => this.now;
  }

  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at);
      const next = this.queue[0];
      if (!next || next.at > end) break;
      this.queue.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}

module.exports = { createStub, FakeTimers, Emitter };
