'use strict';
// The friends view model: sections, rows, the status bar, the popup's wording.
const test = require('node:test');
const assert = require('node:assert/strict');
const { FriendsView, activityLine, agoText, durationText, untilFor } = require('../lib/view');

const NOW = 1_700_000_000;

function row(id, login, status, extra = {}) {
  const section = status === 'offline' ? 'offline' : status === 'away' ? 'away' : 'online';
  const rank = { online: 0, dnd: 1, away: 2, offline: 3 }[status];
  return { id, login, name: null, status, section, activity: null, last_seen: null, until: null, sort: [rank, 0, login], ...extra };
}

function signedIn(view, extra = {}) {
  view.setDesktop('connected');
  view.apply({
    type: 'state',
    link: 'online',
    signed_in: true,
    me: { id: 1, login: 'ada', name: 'Ada' },
    status: 'online',
    until: null,
    unread: 0,
    online: 3,
    friends: 4,
    editor_sign_in: false,
    ...extra,
  });
}

test('rows are grouped Online / Away / Offline in the popup order, empty sections left out', () => {
  const view = new FriendsView();
  signedIn(view);
  view.apply({
    type: 'friends',
    friends: [
      row(4, 'dora', 'offline', { last_seen: NOW - 3 * 3600 }),
      row(2, 'bob', 'online', {
        sort: [0, -(NOW - 720), 'bob'],
        activity: { kind: 'coding', language: 'Python', project: 'api', since: NOW - 720 },
      }),
      row(3, 'cy', 'dnd', { name: 'Cy' }),
      row(5, 'eve', 'online', { sort: [0, -(NOW - 60), 'eve'] }),
    ],
  });
  const sections = view.sections(NOW);
  assert.deepEqual(sections.map((s) => s.label), ['Online (3)', 'Offline (1)']);
  assert.deepEqual(
    sections[0].friends.map((f) => [f.label, f.description]),
    [
      ['eve', 'Online'], // changed a minute ago: more recent than bob's activity
      ['bob', 'Coding · Python · api · 12 min'],
      ['Cy', 'Do not disturb'],
    ],
  );
  assert.deepEqual(sections[1].friends.map((f) => f.description), ['Last seen 3 h ago']);
});

test('deltas add, replace and remove rows; malformed lines change nothing', () => {
  const view = new FriendsView();
  signedIn(view);
  let changes = 0;
  view.onDidChange(() => (changes += 1));
  view.apply({ type: 'friends', friends: [row(2, 'bob', 'online')] });
  view.apply({ type: 'friend', friend: row(3, 'cy', 'away') });
  view.apply({ type: 'friend', friend: row(2, 'bob', 'offline') });
  assert.deepEqual(view.sections(NOW).map((s) => s.id), ['away', 'offline']);
  view.apply({ type: 'friend_removed', id: 3 });
  assert.deepEqual(view.sortedRows().map((r) => r.login), ['bob']);
  assert.equal(changes, 4);
  for (const bad of [null, 'x', { type: 'friend' }, { type: 'friend', friend: { id: 'x' } }, { type: 'friend_removed', id: 99 }, { type: 'nonsense' }, { type: 'friends', friends: 3 }]) {
    assert.equal(view.apply(bad), false);
  }
  assert.equal(changes, 4);
  assert.deepEqual(view.sortedRows().map((r) => r.login), ['bob']);
});

test('the status bar says status and friends online, and why not when it cannot', () => {
  const view = new FriendsView();
  assert.equal(view.statusBar().text, '○ Presence');
  assert.equal(view.message(), 'The Presence app is not running.');
  view.setDesktop('connected');
  view.apply({ type: 'state', signed_in: false, me: null, status: 'online', editor_sign_in: true });
  assert.equal(view.statusBar().text, '○ Signed out');
  assert.deepEqual(view.sections(NOW), []);
  signedIn(view);
  assert.equal(view.statusBar().text, '● Online · 3 friends');
  signedIn(view, { status: 'dnd', online: 1, unread: 2 });
  assert.equal(view.statusBar().text, '⊘ Do not disturb · 1 friend · 2 unread');
  view.setDesktop('absent');
  assert.deepEqual(view.sections(NOW), [], 'nothing stale is shown once the desktop is gone');
  assert.equal(view.statusBar().text, '○ Presence');
});

test('durations read like the popup', () => {
  assert.deepEqual([0, 59, 60, 3599, 3600, 86399, 86400].map(durationText), [
    '<1 min', '<1 min', '1 min', '59 min', '1 h', '23 h', '1 d',
  ]);
  assert.equal(agoText(30), 'just now');
  assert.equal(agoText(7200), '2 h ago');
  assert.equal(activityLine(row(1, 'x', 'offline'), NOW), 'Offline');
  assert.equal(
    activityLine(row(1, 'x', 'away', { activity: { kind: 'debugging', language: null, project: null, since: null } }), NOW),
    'Away · Debugging',
  );
});

test('status durations end when those of the tray do', () => {
  const at = (h) => new Date(2026, 2, 3, h, 0, 0).getTime() / 1000; // local time
  assert.equal(untilFor('until_changed', at(14)), null);
  assert.equal(untilFor('one_hour', at(14)), at(15));
  assert.equal(untilFor('until_tomorrow', at(14)), new Date(2026, 2, 4, 9, 0, 0).getTime() / 1000);
  assert.equal(untilFor('until_tomorrow', at(3)), at(9), 'before 05:00 "tomorrow" is this morning');
});
