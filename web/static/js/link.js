// link.js is the join link: the token (and room) from the URL fragment,
// kept for this tab so that a reload comes back where the person was, and
// the link check (docs/api.md, GET /v1/link) before the camera turns on.

import { getJSON, tabStore } from './api.js';
import { state } from './joinstate.js';
import { linkMessages, roleNames } from './statustext.js';

/** How long after leaving a call a reload of the page goes straight back in, in milliseconds (the server keeps the seat 60 s). */
const RESUME_FOR = 55000;

/** The link of this tab, kept across reloads (sessionStorage). */
const kept = tabStore('join');

/**
 * readToken takes the token (and the room, for a token valid in any room)
 * from the URL fragment and removes them from the visible URL.
 */
export function readToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  let token = (params.get('token') || '').trim();
  state.room = params.get('room') || '';
  state.autoJoin = params.get('join') === '1';
  state.hops = Math.max(0, parseInt(params.get('hops') || '0', 10) || 0);
  if (location.hash) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  if (token) {
    kept.set({ token, room: state.room });
    return token;
  }
  // A reload: the link kept for this tab, and back where the person was
  // (the call or the waiting room) while the server still keeps their place.
  const k = kept.get();
  token = typeof k.token === 'string' ? k.token : '';
  state.room = typeof k.room === 'string' ? k.room : '';
  if (token && k.where && Date.now() - (Number(k.at) || 0) < RESUME_FOR) {
    state.resume = typeof k.resume === 'string' ? k.resume : '';
    state.autoJoin = true;
  }
  return token;
}

/** keepPlace remembers for a reload where the person is now: 'call', 'waiting' or '' (nowhere to go back to). */
export function keepPlace(where) {
  kept.set({ token: state.token, room: state.room, where, resume: where === 'call' ? state.resume : '', at: Date.now() });
}

/**
 * checkLink asks the server whether the link works (GET /v1/link) and
 * returns the message to show instead of the device check, or null. A
 * failed check lets the join itself say what is wrong.
 */
export async function checkLink() {
  const q = state.room ? `?room=${encodeURIComponent(state.room)}` : '';
  try {
    state.link = await getJSON(state.token, `/v1/link${q}`);
    return linkMessages[state.link.status] || null;
  } catch {
    return null;
  }
}

/** describeInvite says who the token lets you join as, in words. */
export function describeInvite(claims) {
  if (!claims || !claims.name) {
    return 'We could not read the details in this link. You can still try to join.';
  }
  const role = roleNames[claims.role] || claims.role || 'guest';
  return `You are joining as ${claims.name} (${role}).`;
}
