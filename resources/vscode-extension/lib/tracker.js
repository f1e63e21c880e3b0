'use strict';
// What this window is doing, from VS Code events, reduced to one state:
// workspace, folder, git remote, file name (never its path), language,
// kind and focus. Edits mean coding, focus without edits means reading, a
// debug session means debugging. Updates go out at most once every 2 s
// unless the kind or focus changes; an unchanged state is repeated at most
// once a minute while the user interacts, so the desktop knows the window
// is not idle.

const path = require('path');

const MIN_INTERVAL_MS = 2000;
const REPEAT_MS = 60000;
const CODING_MS = 90000;

class Tracker {
  constructor(vscode, send, options = {}) {
    this.vscode = vscode;
    this.sendNow = send;
    this.timers = options.timers || { setTimeout, clearTimeout };
    this.now = options.now || (() => Date.now());
    this.remoteOf = options.remoteOf || (() => '');
    this.lastEdit = -Infinity;
    this.lastSent = null;
    this.lastSentAt = -Infinity;
    this.pending = null;
    this.codingTimer = null;
    this.disposables = [];
  }

  start() {
    const { window, workspace, debug } = this.vscode;
    const on = (event, handler) => this.disposables.push(event((e) => handler(e)));
    on(window.onDidChangeActiveTextEditor, () => this.update());
    on(window.onDidChangeWindowState, () => this.update());
    on(window.onDidChangeTextEditorSelection, () => this.update(true));
    on(workspace.onDidChangeTextDocument, (e) => this.edited(e));
    on(workspace.onDidChangeWorkspaceFolders, () => this.update());
    on(debug.onDidStartDebugSession, () => this.update());
    on(debug.onDidTerminateDebugSession, () => this.update());
    on(debug.onDidChangeActiveDebugSession, () => this.update());
    this.update();
  }

  stop() {
    for (const d of this.disposables) d.dispose();
    this.disposables = [];
    if (this.pending) this.timers.clearTimeout(this.pending);
    if (this.codingTimer) this.timers.clearTimeout(this.codingTimer);
    this.pending = this.codingTimer = null;
  }

  edited(event) {
    const editor = this.vscode.window.activeTextEditor;
    const doc = event && event.document;
    // Output panels, git views and the like change without me typing.
    if (!editor || !doc || doc !== editor.document || !event.contentChanges.length) return;
    if (!['file', 'untitled', 'vscode-remote', 'vscode-notebook-cell'].includes(doc.uri.scheme)) {
      return;
    }
    this.lastEdit = this.now();
    if (this.codingTimer) this.timers.clearTimeout(this.codingTimer);
    // Turn back to reading when typing stops.
    this.codingTimer = this.timers.setTimeout(() => {
      this.codingTimer = null;
      this.update();
    }, CODING_MS);
    this.update(true);
  }

  state() {
    const { window, workspace, debug } = this.vscode;
    const editor = window.activeTextEditor;
    const doc = editor && editor.document;
    const folders = workspace.workspaceFolders || [];
    let folder = folders[0];
    if (doc && workspace.getWorkspaceFolder) folder = workspace.getWorkspaceFolder(doc.uri) || folder;
    const folderPath = folder && folder.uri.scheme === 'file' ? folder.uri.fsPath : '';
    let kind = 'reading';
    if (debug.activeDebugSession) kind = 'debugging';
    else if (this.now() - this.lastEdit < CODING_MS) kind = 'coding';
    const state = {
      workspace: workspace.name || (folder && folder.name) || '',
      folder: folderPath,
      git_remote: folder ? this.remoteOf(folder) || '' : '',
      file: doc && !doc.isUntitled ? path.basename(doc.fileName) : doc ? 'Untitled' : '',
      language: doc ? doc.languageId : '',
      kind,
      focused: Boolean(window.state && window.state.focused),
    };
    return state;
  }

  update(interaction = false) {
    const state = this.state();
    const last = this.lastSent;
    const same = last && JSON.stringify(last) === JSON.stringify(state);
    const urgent = !last || last.kind !== state.kind || last.focused !== state.focused;
    const elapsed = this.now() - this.lastSentAt;
    if (same && !(interaction && elapsed >= REPEAT_MS)) return;
    if (urgent || elapsed >= MIN_INTERVAL_MS) {
      this.flush(state);
      return;
    }
    if (!this.pending) {
      this.pending = this.timers.setTimeout(() => {
        this.pending = null;
        this.flush(this.state());
      }, MIN_INTERVAL_MS - elapsed);
    }
  }

  flush(state) {
    if (this.pending) {
      this.timers.clearTimeout(this.pending);
      this.pending = null;
    }
    this.lastSent = state;
    this.lastSentAt = this.now();
    this.sendNow(state);
  }
}

module.exports = { Tracker, MIN_INTERVAL_MS, REPEAT_MS, CODING_MS };
