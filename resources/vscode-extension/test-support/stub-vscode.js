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
    },
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
