'use strict';
// The git remote of a workspace folder, for the desktop's per-repository
// privacy rules. Asked from VS Code's built-in git extension when it is
// active, else read from .git/config; any failure just means "no remote".

const fs = require('fs');
const path = require('path');

function parseGitConfig(text) {
  const remotes = {};
  let current = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const section = line.match(/^\[remote\s+"([^"]+)"\]$/);
    if (section) {
      current = section[1];
      continue;
    }
    if (line.startsWith('[')) {
      current = null;
      continue;
    }
    const url = line.match(/^url\s*=\s*(.+)$/);
    if (current && url && !remotes[current]) remotes[current] = url[1].trim();
  }
  return remotes.origin || Object.values(remotes)[0] || '';
}

function fromGitExtension(vscode, folder) {
  const ext = vscode.extensions && vscode.extensions.getExtension('vscode.git');
  if (!ext || !ext.isActive || !ext.exports || !ext.exports.getAPI) return '';
  try {
    const api = ext.exports.getAPI(1);
    const root = folder.uri.fsPath;
    const repo = api.repositories.find((r) => root.startsWith(r.rootUri.fsPath));
    if (!repo) return '';
    const remotes = repo.state.remotes || [];
    const chosen = remotes.find((r) => r.name === 'origin') || remotes[0];
    return (chosen && (chosen.fetchUrl || chosen.pushUrl)) || '';
  } catch {
    return '';
  }
}

function remoteResolver(vscode, readFile = fs.readFileSync) {
  const cache = new Map();
  return (folder) => {
    const fromExt = fromGitExtension(vscode, folder);
    if (fromExt) return fromExt;
    if (folder.uri.scheme !== 'file') return '';
    const key = folder.uri.fsPath;
    if (!cache.has(key)) {
      let remote = '';
      try {
        remote = parseGitConfig(readFile(path.join(key, '.git', 'config'), 'utf8'));
      } catch {
        remote = '';
      }
      cache.set(key, remote);
    }
    return cache.get(key);
  };
}

module.exports = { parseGitConfig, remoteResolver };
