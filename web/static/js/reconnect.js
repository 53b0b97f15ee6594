// reconnect.js rejoins after a lost connection while the server keeps the
// seat: tries spaced out, a banner that says the call is coming back, and
// the lost connection's part of the call cleared meanwhile.

import { connectSession } from './call.js';
import { hideWeak, stopStats } from './callstats.js';
import { renderHandButton } from './devices.js';
import { renderConsole } from './hostconsole.js';
import { $, state } from './joinstate.js';
import { removeTile } from './tiles.js';
import { announce, closeDialogs, hideNotice, show } from './views.js';

/**
 * Rejoining after a lost connection: the first try after RECONNECT_FIRST ms,
 * each next one after twice as long, and no new try RECONNECT_FOR ms after the
 * loss (the server keeps the seat for 60 s).
 */
const RECONNECT_FIRST = 1000;

const RECONNECT_MAX_DELAY = 8000;

const RECONNECT_FOR = 45000;

/** While rejoining after a lost connection: {since, attempt, timer, guard}. */
let reconnect = null;

/** reconnecting reports whether the page is rejoining after a lost connection. */
export function reconnecting() {
  return reconnect !== null;
}

/**
 * reconnectDelay returns how long to wait before the next try to rejoin, or
 * -1 when the time for trying is over.
 */
export function reconnectDelay() {
  const r = reconnect;
  if (!r) {
    return RECONNECT_FIRST;
  }
  const delay = Math.min(RECONNECT_FIRST * 2 ** r.attempt, RECONNECT_MAX_DELAY);
  return Date.now() + delay - r.since < RECONNECT_FOR ? delay : -1;
}

/**
 * dropCall clears what belonged to the lost connection: the others' tiles,
 * the console and the statistics. Your own tile and devices stay.
 */
export function dropCall() {
  stopStats();
  state.session = null;
  state.joined = false;
  state.you = null;
  state.hand = false;
  state.waiting = [];
  state.hands = [];
  state.seen.clear();
  closeDialogs();
  hideNotice();
  hideWeak();
  for (const [id, tile] of [...state.tiles]) {
    if (!tile.el.classList.contains('tile-self')) {
      removeTile(id);
    }
  }
  renderConsole();
  renderHandButton();
}

/** scheduleReconnect shows that the call is coming back and tries to rejoin after the next delay. */
export function scheduleReconnect() {
  const delay = reconnectDelay();
  if (!reconnect) {
    reconnect = { since: Date.now(), attempt: 0, timer: 0, guard: 0 };
    $('[data-reconnecting]').hidden = false;
    show('call');
    announce('The connection dropped. Reconnecting…');
  }
  const r = reconnect;
  r.attempt++;
  r.timer = setTimeout(() => {
    r.timer = 0;
    connectSession();
    const session = state.session;
    // A try that neither gets in nor fails (a network that swallows packets) is given up.
    r.guard = setTimeout(() => {
      if (state.session === session && !state.joined) {
        session.drop();
      }
    }, 10000);
  }, delay);
}

/** endReconnect stops rejoining and hides the banner. */
export function endReconnect() {
  const r = reconnect;
  if (!r) {
    return;
  }
  clearTimeout(r.timer);
  clearTimeout(r.guard);
  reconnect = null;
  $('[data-reconnecting]').hidden = true;
}
