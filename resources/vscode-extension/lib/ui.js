'use strict';
// Draws the FriendsView in VS Code: the tree in the Presence activity-bar
// container, the status bar item and the context keys the welcome views read.
// Everything shown comes from the view model (lib/view.js); this file only maps
// it onto VS Code's API.

const STATUS_COLOURS = {
  online: 'charts.green',
  dnd: 'charts.red',
  away: 'charts.yellow',
  invisible: 'disabledForeground',
  offline: 'disabledForeground',
};

class FriendsTree {
  constructor(vscode, view, clock = () => Date.now() / 1000) {
    this.vscode = vscode;
    this.view = view;
    this.clock = clock;
    this.emitter = new vscode.EventEmitter();
    this.onDidChangeTreeData = this.emitter.event;
  }

  refresh() {
    this.emitter.fire(undefined);
  }

  getChildren(element) {
    const now = this.clock();
    if (!element) return this.view.sections(now).map((section) => ({ kind: 'section', section }));
    if (element.kind === 'section') {
      return element.section.friends.map((friend) => ({ kind: 'friend', friend }));
    }
    return [];
  }

  getTreeItem(element) {
    const { vscode } = this;
    if (element.kind === 'section') {
      const item = new vscode.TreeItem(
        element.section.label,
        vscode.TreeItemCollapsibleState.Expanded,
      );
      item.id = `section:${element.section.id}`;
      item.contextValue = 'section';
      return item;
    }
    const { friend } = element;
    const item = new vscode.TreeItem(friend.label, vscode.TreeItemCollapsibleState.None);
    item.id = `friend:${friend.id}`;
    item.description = friend.description;
    item.tooltip = `${friend.label} (@${friend.login})\n${friend.description}`;
    item.contextValue = 'friend';
    item.iconPath = new vscode.ThemeIcon(
      friend.status === 'offline' ? 'circle-outline' : 'circle-filled',
      new vscode.ThemeColor(STATUS_COLOURS[friend.status] || 'foreground'),
    );
    item.command = {
      command: 'presence.messageFriend',
      title: 'Message',
      arguments: [{ id: friend.id, label: friend.label }],
    };
    return item;
  }
}

// Keeps the tree, the status bar and the context keys in step with the view.
class Surface {
  constructor(vscode, view, options = {}) {
    this.vscode = vscode;
    this.view = view;
    this.tree = new FriendsTree(vscode, view, options.clock);
    this.treeView = vscode.window.createTreeView('presence.friends', {
      treeDataProvider: this.tree,
      showCollapseAll: false,
    });
    this.item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 50);
    this.timers = options.timers || { setInterval, clearInterval };
    // Relative times ("12 min", "3 h ago") move on even when nothing is sent.
    this.ticker = this.timers.setInterval(() => this.tree.refresh(), 60_000);
    this.subscription = view.onDidChange(() => this.update());
    this.update();
  }

  update() {
    const { view, vscode } = this;
    this.tree.refresh();
    this.treeView.message = view.desktop === 'connected' && view.signedIn ? view.message() || undefined : undefined;
    const bar = view.statusBar();
    this.item.text = bar.text;
    this.item.tooltip = bar.tooltip;
    if (view.desktop !== 'connected') this.item.command = 'presence.startDesktop';
    else if (!view.signedIn) this.item.command = 'presence.signIn';
    else this.item.command = 'presence.setStatus';
    this.item.show();
    vscode.commands.executeCommand('setContext', 'presence.desktop', view.desktop);
    vscode.commands.executeCommand('setContext', 'presence.signedIn', view.signedIn);
    vscode.commands.executeCommand(
      'setContext',
      'presence.editorSignIn',
      Boolean(view.state && view.state.editor_sign_in),
    );
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.timers.clearInterval(this.ticker);
    this.subscription.dispose();
    this.item.dispose();
    this.treeView.dispose();
  }
}

module.exports = { FriendsTree, Surface };
