'use strict';
// Prints the friends view model for a sample list, as the extension computes
// it (lib/view.js), for scripts/render_vscode_view.py: node sample-view.js
const { FriendsView } = require('../lib/view');

const now = 1_767_000_000;
const view = new FriendsView();
view.setDesktop('connected');
view.apply({
  type: 'state', link: 'online', signed_in: true, me: { id: 1, login: 'ada', name: 'Ada' },
  status: 'online', until: null, unread: 2, online: 4, friends: 5, editor_sign_in: false,
});
const row = (id, login, name, status, extra) => {
  const section = status === 'offline' ? 'offline' : status === 'away' ? 'away' : 'online';
  const rank = { online: 0, dnd: 1, away: 2, offline: 3 }[status];
  return { id, login, name, avatar_url: null, status, section, activity: null, last_seen: null, until: null, sort: [rank, 0, login], ...extra };
};
view.apply({
  type: 'friends',
  friends: [
    row(2, 'grace', 'Grace Hopper', 'online', {
      sort: [0, -(now - 720), 'grace'],
      activity: { kind: 'coding', editor: 'Visual Studio Code', language: 'Python', project: 'compiler', since: now - 720 },
    }),
    row(3, 'linus', null, 'online', {
      sort: [0, -(now - 3 * 3600), 'linus'],
      activity: { kind: 'debugging', editor: 'Neovim', language: 'C', project: null, since: now - 3 * 3600 },
    }),
    row(4, 'margaret', 'Margaret H.', 'dnd', {
      sort: [1, -(now - 1500), 'margaret'],
      activity: { kind: 'reading', editor: 'Visual Studio Code', language: 'Rust', project: null, since: now - 1500 },
    }),
    row(5, 'alan', 'Alan', 'away', { sort: [2, 0, 'alan'] }),
    row(6, 'barbara', 'Barbara L.', 'offline', { last_seen: now - 2 * 3600, sort: [3, -(now - 7200), 'barbara'] }),
  ],
});
process.stdout.write(JSON.stringify({ sections: view.sections(now), statusBar: view.statusBar() }));
