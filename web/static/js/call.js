// call.js is the session on the page: it joins with protocol.js's Session
// and turns each server event (docs/protocol.md) into the waiting room, the
// call, the console and the closing message; a connection lost in the call
// is handed to reconnect.js.

import { LAYER_ID, Session } from './protocol.js';
import { renderAudioOnly, startStats, stopStats } from './callstats.js';
import { applyLocalMedia, renderHandButton, renderSelf, stopDevices, stopMeter } from './devices.js';
import { isTherapist, renderConsole, renderHands, renderLock, renderPresent, renderWaitingList, trackHand } from './hostconsole.js';
import { $, parts, state } from './joinstate.js';
import { keepPlace } from './link.js';
import { loadMyWeek } from './myschedule.js';
import { dropCall, endReconnect, reconnectDelay, reconnecting, scheduleReconnect } from './reconnect.js';
import { actionErrors, closingCodes, endedMessage, errorMessage, genericError, supportText, turnedAwayWords } from './statustext.js';
import { addSelfTile, attachStream, clearTiles, removeTile, renderTile, scheduleLayers, tileFor } from './tiles.js';
import { announce, closeDialogs, hideNotice, setRoomName, show, showMessage, showNotice } from './views.js';

/** How many redirects to another server a join may follow before giving up. */
const MAX_REDIRECTS = 3;

/** join connects to the session with the previewed devices. */
export async function join() {
  $('[data-action="join"]').disabled = true;
  announce('Connecting…');
  await state.preview;
  stopMeter();
  state.ending = null;
  state.joined = false;
  state.waited = false;
  connectSession();
}

/** connectSession opens a session with the token and the local stream, and follows its events. */
export function connectSession() {
  const session = new Session({ token: state.token, stream: state.stream, room: state.room, resume: state.resume, checkin: state.checkin });
  state.session = session;
  const handlers = {
    joined: onJoined,
    waiting: onWaiting,
    waiting_list: onWaitingList,
    participant_joined: (d) => onParticipant(d.participant, true),
    participant_updated: (d) => onParticipant(d.participant, false),
    participant_left: onParticipantLeft,
    track: (d) => (d.screen ? parts.layout.screenTrack(d) : attachStream(d.participantId, d.stream, d.track)),
    screen_ended: () => parts.layout.captureEnded(),
    muted: onMuted,
    removed: onRemoved,
    ended: () => { state.ending = endedMessage; },
    room_updated: onRoomUpdated,
    chat: (d) => parts.chat.add(d),
    chat_removed: (d) => parts.chat.remove(d.message_id),
    breakout: (d) => parts.breakouts.update(d),
    turned_away: onTurnedAway,
    redirect: onRedirect,
    error: onError,
    closed: onClosed,
  };
  for (const [type, fn] of Object.entries(handlers)) {
    session.addEventListener(type, (e) => fn(e.detail));
  }
  session.connect();
}

/** onJoined switches to the call view. */
function onJoined(msg) {
  const back = reconnecting();
  endReconnect();
  state.joined = true;
  state.resume = msg.resume || '';
  keepPlace('call');
  state.host = msg.room.host || '';
  state.autoAdmit = !!msg.room.auto_admit;
  parts.chat.start({ therapist: msg.you.role === 'therapist', enabled: msg.room.chat, keep: back });
  parts.breakouts.start({ you: msg.you, room: msg.room });
  state.you = msg.you;
  state.locked = !!msg.room.locked;
  setRoomName(msg.room.title || msg.room.id);
  show('call');
  parts.layout.start(msg.room);
  const now = Date.now();
  state.seen.set(msg.you.id, now);
  addSelfTile(msg.you);
  for (const p of msg.participants) {
    state.seen.set(p.id, now);
    onParticipant(p, false);
  }
  if (!state.audio || !state.video) {
    state.session.setMedia(state.audio, state.video);
  }
  renderHandButton();
  renderConsole();
  renderAudioOnly();
  startStats();
  scheduleLayers();
  if (back) {
    announce(`You are back in the session. ${othersText()}`);
    return; // focus stays where the person left it
  }
  announce(`${state.waited ? 'Your therapist let you in. ' : ''}You are in the session. ${othersText()}`);
  $('[data-view="call"] [data-action="toggle-audio"]').focus();
}

/** othersText says how many others are in the session. */
function othersText() {
  const n = state.tiles.size - 1;
  return n === 0 ? 'Nobody else is here yet.' : n === 1 ? '1 other person is here.' : `${n} other people are here.`;
}

/** onWaiting shows the waiting room, and your place in line as it moves. */
function onWaiting(msg) {
  endReconnect(); // the seat was not kept: the therapist admits you again
  const first = !state.waited;
  state.waited = true;
  keepPlace('waiting');
  show('waiting');
  const pos = $('[data-position]');
  const before = pos.textContent;
  pos.textContent = msg.position === 1 ? 'You are next in line.' : msg.position > 1 ? `You are number ${msg.position} in line.` : '';
  pos.hidden = !pos.textContent;
  if (first) {
    announce('');
    $('#waiting-title').focus();
  } else if (pos.textContent !== before) {
    announce(pos.textContent); // the line moved
  }
}

/** onTurnedAway tells a therapist that someone could not come in, and why. */
function onTurnedAway({ participant, reason }) {
  if (!isTherapist() || !participant) {
    return;
  }
  const text = `${participant.name || 'Someone'} tried to join, but ${turnedAwayWords[reason] || 'could not come in'}.`;
  const line = $('[data-turned-away]');
  line.textContent = reason === 'locked' ? `${text} Unlock the room to let them in.` : text;
  line.hidden = false;
  announce(text);
}

/** onWaitingList keeps the therapist's waiting list and says who arrived and who was turned away. */
function onWaitingList({ waiting = [] }) {
  const before = new Set(state.waiting.map((p) => p.id));
  const now = new Set(waiting.map((p) => p.id));
  const arrived = waiting.filter((p) => !before.has(p.id));
  const gone = state.waiting.filter((p) => !now.has(p.id));
  state.waiting = waiting;
  renderWaitingList();
  const denied = gone.filter((p) => state.denied.has(p.id));
  for (const p of gone) {
    state.denied.delete(p.id);
  }
  if (isTherapist() && denied.length > 0 && arrived.length === 0) {
    announce(denied.length === 1 ? `${denied[0].name} was not let in.` : `${denied.length} people were not let in.`);
  } else if (isTherapist() && gone.length > 0 && arrived.length === 0 && gone.some((p) => $('[data-status]').textContent.startsWith(`${p.name} is waiting`))) {
    announce(waiting.length ? `${waiting.length} waiting to join.` : 'Nobody is waiting now.');
  }
  if (isTherapist() && arrived.length === 1) {
    announce(`${arrived[0].name} is waiting to join.`);
  } else if (isTherapist() && arrived.length > 1) {
    announce(`${arrived.length} people are waiting to join.`);
  }
}

/** onParticipant adds or updates a participant's tile, your own included. */
function onParticipant(p, arrived) {
  if (!p) {
    return;
  }
  if (state.you && p.id === state.you.id) {
    // The server's view of you: a therapist's mute is in it, your hand may not be.
    p = { ...p, hand: state.hand };
  }
  if (!state.seen.has(p.id)) {
    state.seen.set(p.id, Date.now());
  }
  trackHand(p);
  renderTile(tileFor(p.id), p);
  parts.breakouts.seen(p);
  renderPresent();
  renderHands();
  if (arrived) {
    announce(`${p.name} joined.`);
  }
}

/** onParticipantLeft removes a tile. */
function onParticipantLeft(msg) {
  const tile = state.tiles.get(msg.id);
  if (tile && tile.p) {
    announce(msg.reason === 'removed' ? `${tile.p.name} is no longer in the session.` : `${tile.p.name} left.`);
  }
  removeTile(msg.id);
  state.seen.delete(msg.id);
  trackHand({ id: msg.id, hand: false });
  if (msg.id === state.host) {
    renderConsole(); // the host is away: any therapist may end or take over
  } else {
    renderPresent();
    renderHands();
  }
}

/** onMuted follows a therapist's mute: it is turned off here too, and you may turn it back on. */
function onMuted({ kind, by }) {
  const who = by || 'Your therapist';
  const video = kind === 'video';
  state[video ? 'video' : 'audio'] = false;
  applyLocalMedia();
  renderSelf();
  showNotice(video
    ? `${who} turned off your camera. You can turn it back on when you are ready.`
    : `${who} muted your microphone. You can unmute it when you want to speak.`, video ? 'video' : 'audio');
}

/** onRoomUpdated follows the room's lock state and its host. */
function onRoomUpdated({ room }) {
  if (!room) {
    return;
  }
  const wasLocked = state.locked;
  const host = room.host || '';
  parts.chat.setEnabled(room.chat !== false);
  parts.layout.setRoom(room);
  if (state.autoAdmit !== !!room.auto_admit) {
    state.autoAdmit = !!room.auto_admit;
    renderLock();
    if (isTherapist()) {
      announce(state.autoAdmit ? 'People now come in without waiting.' : 'People wait to be admitted again.');
    }
  }
  state.locked = !!room.locked;
  setRoomName(room.title || room.id);
  renderLock();
  if (host !== state.host) {
    state.host = host;
    renderConsole();
    const who = host === state.you?.id ? 'You are' : `${state.tiles.get(host)?.p?.name || 'Another therapist'} is`;
    if (host) {
      announce(`${who} now the host of this session.`);
    }
  }
  if (isTherapist() && wasLocked !== state.locked) {
    announce(state.locked ? 'The room is locked. Nobody new can join.' : 'The room is open again.');
  }
}

/** onRemoved keeps the reason a therapist removed or turned you away for the closing message. */
function onRemoved({ reason }) {
  if (reason === 'denied') {
    state.ending = {
      title: 'Your therapist could not let you in this time',
      text: 'Please contact your therapist or program if you have questions. They are there to help.',
    };
    return;
  }
  state.ending = {
    title: 'You are no longer in this session',
    text: reason ? 'Your therapist took you out of the session and left you this message:' : 'Your therapist took you out of the session.',
    quote: reason || '',
    extra: supportText,
  };
}

/**
 * onRedirect reconnects on the server that holds the room, with the same
 * token: the page of that server joins without another click.
 */
function onRedirect({ url }) {
  let base;
  try {
    base = new URL(url);
  } catch {
    base = null;
  }
  if (!base || (base.protocol !== 'https:' && base.protocol !== 'http:') || state.hops >= MAX_REDIRECTS) {
    state.ending = genericError;
    return;
  }
  state.redirecting = true;
  const params = new URLSearchParams({ token: state.token });
  if (state.room) {
    params.set('room', state.room);
  }
  params.set('join', '1');
  params.set('hops', String(state.hops + 1));
  location.assign(`${base.origin}${base.pathname.replace(/\/+$/, '')}/join#${params}`);
}

/** onError keeps an error that ends the session for the closing message, and announces others. */
function onError(err) {
  if (!state.joined || closingCodes.has(err.code)) {
    state.ending = errorMessage(err);
    return;
  }
  if (err.re === LAYER_ID || parts.layout.error(err)) {
    return; // a layer for someone who just left: nothing the person did; a share has its own words
  }
  announce(actionErrors[err.code] || 'Something did not work. Please try again.');
}

/**
 * onClosed tears the session down and says why it ended; a connection lost
 * in the call (or while rejoining after that) is joined again instead, while
 * the server keeps the seat.
 */
function onClosed({ reason }) {
  const wasJoined = state.joined;
  const rejoining = reconnecting();
  if (reason === 'lost' && (wasJoined || rejoining) && !state.ending && !state.redirecting && reconnectDelay() >= 0) {
    dropCall();
    scheduleReconnect();
    return;
  }
  endReconnect();
  stopStats();
  if (!state.unloading) {
    keepPlace(''); // left, ended, removed or refused: a reload starts at the device check
    state.resume = '';
  }
  state.session = null;
  state.joined = false;
  state.you = null;
  state.hand = false;
  state.locked = false;
  parts.chat.stop();
  parts.breakouts.stop();
  state.waiting = [];
  state.hands = [];
  state.seen.clear();
  closeDialogs();
  hideNotice();
  clearTiles();
  renderConsole();
  stopDevices();
  if (state.redirecting) {
    showMessage({ title: 'Connecting you to your session…', text: 'This takes a moment.' });
  } else if (reason === 'left') {
    showMessage({ title: 'You left the session', text: 'You can close this page, or join again if you left by mistake.', retry: true, retryLabel: 'Join again' });
    if (wasJoined) {
      loadMyWeek($('[data-message-week]'));
    }
  } else if (state.ending) {
    showMessage(state.ending);
    if (state.ending === endedMessage) {
      loadMyWeek($('[data-message-week]'));
    }
  } else {
    const lost = wasJoined || rejoining;
    showMessage({
      title: lost ? 'The connection was lost' : 'We could not reach the session',
      text: lost ? 'We tried to bring you back, but could not. Check your internet connection, then join again.' : 'Check your internet connection, then try again.',
      retry: true,
      retryLabel: lost ? 'Join again' : 'Try again',
    });
  }
}

/** leave leaves the session or the waiting room, or stops rejoining after a lost connection. */
export function leave() {
  if (state.session) {
    state.session.leave();
  } else if (reconnecting()) {
    onClosed({ reason: 'left' });
  }
}
