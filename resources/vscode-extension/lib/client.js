'use strict';
// The bridge connection: JSON lines over the desktop's local socket.
// Silent by design: when the desktop is not running, no error is shown and
// connection attempts back off to one a minute; the latest state is sent as
// soon as a connection succeeds. Version 2 (both ways) is announced; an older
// desktop that refuses it is spoken to in version 1 (activity only).

const net = require('net');

const BRIDGE_VERSION = 2;
const MAX_FIELD = 4096;

function backoffDelays(base = 1000, max = 60000) {
  let attempt = 0;
  return {
    next() {
      const delay = Math.min(max, base * 2 ** attempt);
      attempt = Math.min(attempt + 1, 16);
      // Up to 20% jitter so many windows do not reconnect in lockstep.
      return Math.round(delay * (0.8 + Math.random() * 0.2));
    },
    reset() {
      attempt = 0;
    },
  };
}

function clip(value) {
  return typeof value === 'string' ? value.slice(0, MAX_FIELD) : value;
}

class BridgeClient {
  constructor(options) {
    this.path = options.path;
    this.hello = options.hello;
    this.connect = options.connect || ((p) => net.createConnection(p));
    this.timers = options.timers || { setTimeout, clearTimeout };
    this.log = options.log || (() => {});
    this.delays = options.delays || backoffDelays();
    this.socket = null;
    this.ready = false;
    this.latest = null;
    this.stopped = false;
    this.retryTimer = null;
    this.buffer = '';
    this.onReady = options.onReady || (() => {});
    this.onLine = options.onLine || (() => {});
    this.onStatus = options.onStatus || (() => {});
    this.version = options.version || BRIDGE_VERSION;
    this.desktopVersion = 0;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    if (this.stopped || this.socket) return;
    const socket = this.connect(this.path);
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      this.write({ type: 'hello', bridge: this.version, ...this.hello });
    });
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', (err) => this.log(`bridge: ${err.code || err.message}`));
    socket.on('close', () => {
      const wasReady = this.ready;
      this.socket = null;
      this.ready = false;
      this.desktopVersion = 0;
      this.buffer = '';
      if (wasReady) this.onStatus('absent');
      this.scheduleRetry();
    });
  }

  receive(chunk) {
    this.buffer += chunk;
    let newline;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      if (!message || typeof message !== 'object') continue;
      if (message.type === 'hello' && !this.ready) {
        this.ready = true;
        this.desktopVersion = Number.isInteger(message.bridge) ? message.bridge : 1;
        this.delays.reset();
        if (this.latest) this.write(this.latest);
        this.onReady();
        this.onStatus(this.desktopVersion >= 2 ? 'connected' : 'outdated');
      } else if (message.type === 'error' && message.code === 'unsupported_version') {
        if (this.version > 1) {
          // An older desktop: speak version 1 to it (activity still works).
          this.version = 1;
          this.delays.reset();
        } else {
          this.log(`bridge error ${message.code}: ${message.message}`);
          this.stopped = true;
        }
      } else {
        if (message.type === 'error') this.log(`bridge error ${message.code}: ${message.message}`);
        this.onLine(message);
      }
    }
  }

  scheduleRetry() {
    if (this.stopped || this.retryTimer) return;
    const delay = this.delays.next();
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, delay);
  }

  write(message) {
    if (!this.socket) return false;
    this.socket.write(JSON.stringify(message) + '\n');
    return true;
  }

  // A version-2 command; false when it cannot be sent now.
  command(message) {
    if (!this.ready || this.desktopVersion < 2) return false;
    return this.write(message);
  }

  send(activity) {
    const message = { type: 'activity' };
    for (const [key, value] of Object.entries(activity)) message[key] = clip(value);
    this.latest = message;
    if (this.ready) this.write(message);
  }

  stop() {
    this.stopped = true;
    if (this.retryTimer) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket) {
      if (this.ready) this.write({ type: 'bye' });
      this.socket.end();
    }
  }
}

module.exports = { BridgeClient, backoffDelays, BRIDGE_VERSION };
