'use strict';
// The friends view model: what the desktop sent over the bridge (version 2,
// docs/bridge.md), turned into the tree's sections and rows and the status
// bar's text. No `vscode` import: extension.js draws it, tests read it.
//
// The rows are the popup's rows; their second line is rendered here with the
// popup's rules (presence_desktop/core/format.py), because durations go stale
// and are therefore not sent as text. A test on the desktop side checks both
// renderings agree.

const SEP = ' · ';
const SECTIONS = [
  { id: 'online', title: 'Online' },
  { id: 'away', title: 'Away' },
  { id: 'offline', title: 'Offline' },
];
const STATUS_LABELS = {
  online: 'Online',
  away: 'Away',
  dnd: 'Do not disturb',
  invisible: 'Invisible',
  offline: 'Offline',
};
const KIND_LABELS = { coding: 'Coding', reading: 'Reading', debugging: 'Debugging' };
const STATUS_DOTS = { online: '●', away: '◐', dnd: '⊘', invisible: '○', offline: '○' };

// The tray's status durations (presence_desktop/core/status.py): "Until
// tomorrow" ends at 09:00 local time, of today when it is chosen before 05:00.
const DURATIONS = [
  { id: 'one_hour', label: 'For 1 hour' },
  { id: 'until_tomorrow', label: 'Until tomorrow' },
  { id: 'until_changed', label: 'Until I change it' },
];

function untilFor(duration, nowSeconds) {
  if (duration === 'until_changed') return null;
  if (duration === 'one_hour') return Math.floor(nowSeconds) + 3600;
  const local = new Date(nowSeconds * 1000);
  const target = new Date(local.getFullYear(), local.getMonth(), local.getDate(), 9, 0, 0, 0);
  if (local.getHours() >= 5) target.setDate(target.getDate() + 1);
  return Math.floor(target.getTime() / 1000);
}

function durationText(seconds) {
  const minutes = Math.floor(Math.max(0, seconds) / 60);
  if (minutes < 1) return '<1 min';
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h`;
  return `${Math.floor(hours / 24)} d`;
}

function agoText(seconds) {
  return seconds < 60 ? 'just now' : `${durationText(seconds)} ago`;
}

function activitySummary(activity) {
  if (!activity) return '';
  const kind = activity.kind || 'coding';
  const parts = [KIND_LABELS[kind] || kind.charAt(0).toUpperCase() + kind.slice(1)];
  for (const part of [activity.language, activity.project]) if (part) parts.push(part);
  return parts.join(SEP);
}

// The second line of a friend's row, as the popup writes it at time `now` (seconds).
function activityLine(row, now) {
  if (row.status === 'offline') {
    if (row.last_seen === null || row.last_seen === undefined) return 'Offline';
    return `Last seen ${agoText(now - row.last_seen)}`;
  }
  const parts = [];
  if (row.status !== 'online') parts.push(STATUS_LABELS[row.status] || row.status);
  const summary = activitySummary(row.activity);
  if (summary) {
    parts.push(summary);
    if (row.activity && row.activity.since !== null && row.activity.since !== undefined) {
      parts.push(durationText(now - row.activity.since));
    }
  }
  return parts.length ? parts.join(SEP) : 'Online';
}

function compareRows(a, b) {
  const ka = [...a.sort, a.id];
  const kb = [...b.sort, b.id];
  for (let i = 0; i < Math.max(ka.length, kb.length); i += 1) {
    if (ka[i] === kb[i]) continue;
    if (ka[i] === undefined) return -1;
    if (kb[i] === undefined) return 1;
    return ka[i] < kb[i] ? -1 : 1;
  }
  return 0;
}

class FriendsView {
  constructor() {
    this.rows = new Map();
    this.state = null;
    this.desktop = 'absent'; // 'absent' | 'connected' | 'outdated'
    this.listeners = new Set();
  }

  onDidChange(fn) {
    this.listeners.add(fn);
    return { dispose: () => this.listeners.delete(fn) };
  }

  changed() {
    for (const fn of [...this.listeners]) fn();
  }

  setDesktop(desktop) {
    if (desktop === this.desktop) return;
    this.desktop = desktop;
    if (desktop !== 'connected') {
      this.rows = new Map();
      this.state = null;
    }
    this.changed();
  }

  // One line from the desktop; true when the view changed.
  apply(line) {
    if (!line || typeof line !== 'object') return false;
    switch (line.type) {
      case 'friends':
        if (!Array.isArray(line.friends)) return false;
        this.rows = new Map(line.friends.filter(validRow).map((row) => [row.id, row]));
        break;
      case 'friend':
        if (!validRow(line.friend)) return false;
        this.rows.set(line.friend.id, line.friend);
        break;
      case 'friend_removed':
        if (!this.rows.delete(line.id)) return false;
        break;
      case 'state':
        this.state = line;
        break;
      default:
        return false;
    }
    this.changed();
    return true;
  }

  get signedIn() {
    return Boolean(this.state && this.state.signed_in);
  }

  sortedRows() {
    return [...this.rows.values()].sort(compareRows);
  }

  // The tree: three sections (empty ones left out), each with the popup's rows.
  sections(now) {
    if (this.desktop !== 'connected' || !this.signedIn) return [];
    const rows = this.sortedRows();
    return SECTIONS.map(({ id, title }) => {
      const friends = rows.filter((row) => row.section === id).map((row) => friendItem(row, now));
      return { id, title, label: `${title} (${friends.length})`, friends };
    }).filter((section) => section.friends.length > 0);
  }

  // What the view says instead of a list, or null when it shows friends.
  message() {
    if (this.desktop === 'absent') return 'The Presence app is not running.';
    if (this.desktop === 'outdated') return 'The Presence app is too old for the friends view; update it.';
    if (!this.state) return 'Connecting to the Presence app…';
    if (!this.signedIn) return 'You are signed out of Presence.';
    if (this.rows.size === 0) return 'No friends yet. Add some from the Presence app.';
    return null;
  }

  // "● Online · 3 friends" (friends online), or why there is nothing to count.
  statusBar() {
    if (this.desktop !== 'connected') {
      return { text: '○ Presence', tooltip: 'The Presence app is not running. Click to start it.' };
    }
    if (!this.signedIn) {
      return { text: '○ Signed out', tooltip: 'Presence: click to sign in.' };
    }
    const status = this.state.status || 'online';
    const online = this.state.online || 0;
    const friends = `${online} friend${online === 1 ? '' : 's'}`;
    const unread = this.state.unread ? ` · ${this.state.unread} unread` : '';
    return {
      text: `${STATUS_DOTS[status] || '●'} ${STATUS_LABELS[status] || status} · ${friends}${unread}`,
      tooltip: `Signed in to Presence as ${this.state.me ? this.state.me.login : '?'}. Click to set your status.`,
    };
  }

  // Friends one can message (for "Message a friend"), popup order.
  friendChoices(now) {
    return this.sortedRows().map((row) => friendItem(row, now));
  }
}

function validRow(row) {
  return (
    row &&
    typeof row === 'object' &&
    Number.isInteger(row.id) &&
    typeof row.login === 'string' &&
    typeof row.section === 'string' &&
    Array.isArray(row.sort)
  );
}

function friendItem(row, now) {
  return {
    id: row.id,
    label: row.name || row.login,
    login: row.login,
    description: activityLine(row, now),
    status: row.status,
    section: row.section,
  };
}

module.exports = {
  DURATIONS,
  untilFor,
  FriendsView,
  activityLine,
  agoText,
  durationText,
  SECTIONS,
  STATUS_LABELS,
};
