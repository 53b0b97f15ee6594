// join.js is the page behind a join link (/join#token=<JWT>): a device check
// with a camera preview, then the session's video grid and controls. It uses
// protocol.js for everything on the wire and owns only the page.

import { Session } from './protocol.js';

/** What each server error code means for the person, and whether trying again can help. */
const errorMessages = {
  unauthorized: {
    title: 'This join link is not valid',
    text: 'It may have expired, or part of it may be missing. Please ask your program for a new link.',
  },
  forbidden: {
    title: 'This link is for a different session',
    text: 'Please open the link your program sent for this session.',
  },
  room_full: {
    title: 'This session is full',
    text: 'Every seat in this session is taken. Please contact your therapist or program.',
    retry: true,
  },
  locked: {
    title: 'This session is locked',
    text: 'Your therapist has locked this session. Please contact them if you need to join.',
    retry: true,
  },
  removed: {
    title: 'You cannot rejoin this session',
    text: 'You were removed from this session. Please contact your program if you think this is a mistake.',
  },
  not_enrolled: {
    title: 'You are not enrolled in this session',
    text: 'Please contact your program to check your schedule.',
  },
  wrong_track: {
    title: 'This session is for a different group',
    text: 'Please contact your program to check which sessions are yours.',
  },
  too_early: {
    title: 'It is too early to join',
    text: 'The session opens shortly before it starts. Please come back then.',
    retry: true,
  },
  too_late: {
    title: 'It is too late to join this session',
    text: 'This session is over or no longer open.',
  },
};

/** The message for an error code nobody expects a person to understand. */
const genericError = {
  title: 'Something went wrong',
  text: 'We could not connect you to the session. Please try again in a moment.',
  retry: true,
};

/** The closing message when the therapist ends the session. */
const endedMessage = {
  title: 'The session has ended',
  text: 'Thank you for joining. You can close this page.',
};

/** Server errors that close the connection even after joining (PROTOCOL.md, "Error codes"). */
const closingCodes = new Set(['too_large', 'join_timeout', 'rate_limited']);

/** How roles are named to the person. */
const roleNames = {
  therapist: 'therapist',
  client: 'client',
  family: 'family member',
  staff: 'staff',
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** The page's state; there is one session at a time. */
const state = {
  token: '',
  room: '', // only for a token valid in any room
  claims: null,
  stream: null,
  preview: null, // the promise of the local stream
  meter: null,
  audio: true,
  video: true,
  session: null,
  joined: false,
  you: null,
  tiles: new Map(), // participant id -> {el, video, p}
  streams: new Map(), // participant id -> the MediaStream received from them
  ending: null, // what the server said before closing: {title, text, retry}
};

// ---- Token -------------------------------------------------------------

/**
 * readToken takes the token (and the room, for a token valid in any room)
 * from the URL fragment and removes them from the visible URL.
 */
function readToken() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token') || '';
  state.room = params.get('room') || '';
  if (location.hash) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  return token.trim();
}

/**
 * decodeClaims returns the JWT payload without verifying it (the server
 * verifies), or null when it cannot be read.
 */
function decodeClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '='));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** describeInvite says who the token lets you join as, in words. */
function describeInvite(claims) {
  if (!claims || !claims.name) {
    return 'We could not read the details in this link. You can still try to join.';
  }
  const role = roleNames[claims.role] || claims.role || 'guest';
  return `You are joining as ${claims.name} (${role}).`;
}

// ---- Views and messages -------------------------------------------------

/** show makes one view visible and hides the others. */
function show(view) {
  for (const el of $$('[data-view]')) {
    el.hidden = el.dataset.view !== view;
  }
  document.body.dataset.state = view;
}

/** announce puts a short message in the polite live region. */
function announce(text) {
  $('[data-status]').textContent = text;
}

/** setRoomName shows the session's name in the header. */
function setRoomName(name) {
  const el = $('[data-room]');
  el.textContent = name;
  el.hidden = !name;
}

/** showMessage ends on a message, with a "Join again" button when it can help. */
function showMessage({ title, text, retry = false }) {
  $('[data-message-title]').textContent = title;
  $('[data-message-text]').textContent = text;
  $('[data-action="rejoin"]').hidden = !retry;
  show('message');
  announce('');
  $('[data-message-title]').focus();
}

/** errorMessage returns what to tell the person about a server error. */
function errorMessage({ code, next }) {
  const m = errorMessages[code] || genericError;
  if (code === 'too_late' && next) {
    const when = new Date(next);
    const text = Number.isNaN(when.getTime()) ? '' : ` The next session starts ${when.toLocaleString()}.`;
    return { ...m, text: m.text + text };
  }
  return m;
}

// ---- Camera and microphone ---------------------------------------------

/** mediaProblem explains why the camera or microphone could not start. */
function mediaProblem(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
      return 'Your browser did not allow the camera and microphone. Allow them in the site settings, then reload this page.';
    case 'NotFoundError':
      return 'No camera or microphone was found. Connect one, then reload this page.';
    case 'NotReadableError':
      return 'Your camera or microphone is being used by another app. Close that app, then reload this page.';
    default:
      return 'Your camera and microphone could not be started. Reload this page to try again.';
  }
}

/** openDevices asks for camera and microphone, falling back to the microphone alone. */
async function openDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('This browser cannot use a camera here. Open the link in a current Chrome, Firefox, Edge or Safari.');
  }
  const video = { width: { ideal: 640 }, height: { ideal: 480 } };
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video });
  } catch (err) {
    if (err.name === 'NotAllowedError') {
      throw err;
    }
    return navigator.mediaDevices.getUserMedia({ audio: true });
  }
}

/** startPreview opens the devices and shows them in the preview. */
async function startPreview() {
  const status = $('[data-device-status]');
  status.textContent = 'Starting your camera and microphone…';
  try {
    state.stream = await openDevices();
    status.textContent = state.stream.getVideoTracks().length
      ? ''
      : 'No camera is available. Others will hear you but not see you.';
  } catch (err) {
    state.stream = null;
    status.textContent = `${mediaProblem(err)} You can still join to see and hear the others.`;
  }
  const video = $('video[data-local]');
  video.srcObject = state.stream;
  applyLocalMedia();
  startMeter();
}

/** stopDevices turns the camera and microphone off. */
function stopDevices() {
  stopMeter();
  for (const t of state.stream ? state.stream.getTracks() : []) {
    t.stop();
  }
  state.stream = null;
  $('video[data-local]').srcObject = null;
}

/** hasTrack reports whether the local stream has a track of kind. */
function hasTrack(kind) {
  return !!state.stream && state.stream.getTracks().some((t) => t.kind === kind);
}

/**
 * startMeter shows the microphone level so that people can see it works. It
 * is a visual aid only: a level read out many times a second helps nobody.
 */
function startMeter() {
  if (!hasTrack('audio') || !window.AudioContext) {
    return;
  }
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(state.stream).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  const fill = $('[data-meter-fill]');
  const tick = () => {
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const s of samples) {
      peak = Math.max(peak, Math.abs(s - 128));
    }
    const level = state.audio ? Math.min(100, Math.round((peak / 128) * 200)) : 0;
    fill.style.width = `${level}%`;
    state.meter.frame = requestAnimationFrame(tick);
  };
  // A page without a click yet may start the context suspended.
  const resume = () => ctx.resume().catch(() => {});
  document.addEventListener('click', resume, { once: true });
  state.meter = { ctx, resume, frame: requestAnimationFrame(tick) };
  $('[data-meter]').hidden = false;
}

/** stopMeter stops the level meter. */
function stopMeter() {
  if (!state.meter) {
    return;
  }
  cancelAnimationFrame(state.meter.frame);
  document.removeEventListener('click', state.meter.resume);
  state.meter.ctx.close();
  state.meter = null;
  $('[data-meter]').hidden = true;
}

/** applyLocalMedia sets the tracks, buttons and own tile to the chosen mic and camera state. */
function applyLocalMedia() {
  if (!hasTrack('audio')) {
    state.audio = false;
  }
  if (!hasTrack('video')) {
    state.video = false;
  }
  for (const t of state.stream ? state.stream.getTracks() : []) {
    t.enabled = t.kind === 'audio' ? state.audio : state.video;
  }
  for (const b of $$('[data-action="toggle-audio"]')) {
    b.textContent = state.audio ? 'Mute microphone' : 'Unmute microphone';
    b.disabled = !hasTrack('audio');
    b.classList.toggle('btn-off', !state.audio);
  }
  for (const b of $$('[data-action="toggle-video"]')) {
    b.textContent = state.video ? 'Turn camera off' : 'Turn camera on';
    b.disabled = !hasTrack('video');
    b.classList.toggle('btn-off', !state.video);
  }
  setVideoShown($('[data-preview-slot]'), state.video, state.claims?.name);
}

/** toggle flips the microphone or camera and tells the room when in a session. */
function toggle(kind) {
  state[kind] = !state[kind];
  applyLocalMedia();
  if (state.joined) {
    state.session.setMedia(state.audio, state.video);
    const you = state.tiles.get(state.you.id);
    if (you) {
      renderTile(you, { ...you.p, audio: state.audio, video: state.video });
    }
  }
}

// ---- Tiles ------------------------------------------------------------

/** initials returns up to two letters for a camera-off placeholder. */
function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';
}

/** setVideoShown shows a tile's video, or a placeholder with initials when the camera is off. */
function setVideoShown(tile, shown, name) {
  tile.classList.toggle('video-off', !shown);
  const ph = $('[data-placeholder]', tile);
  ph.textContent = initials(name);
  ph.hidden = shown;
}

/** The width:height of a tile, as in app.css. */
const TILE_ASPECT = 4 / 3;

/** The smallest tile width in CSS pixels; below it the stage scrolls. */
const MIN_TILE_WIDTH = 160;

/**
 * layoutTiles sizes the tiles so that all of them fit on the stage, as large
 * as they can be: it tries every column count, and sets the tile width and
 * the grid width that the grid's auto-fit columns follow.
 */
function layoutTiles() {
  const stage = $('[data-stage]');
  const grid = $('[data-tiles]');
  const n = grid.children.length;
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
  const width = stage.clientWidth;
  const height = stage.clientHeight;
  if (n === 0 || width === 0 || height === 0) {
    return;
  }
  let best = { cols: 1, tile: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const tile = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * TILE_ASPECT);
    if (tile > best.tile) {
      best = { cols, tile };
    }
  }
  const tile = Math.floor(Math.max(best.tile, MIN_TILE_WIDTH));
  grid.style.setProperty('--tile-width', `${tile}px`);
  grid.style.setProperty('--grid-width', `${best.cols * tile + (best.cols - 1) * gap}px`);
}

/**
 * makeTile creates the tile of participant id from the template and adds it
 * to the tiles; video is the element to show, or null for a new one.
 */
function makeTile(id, video) {
  const el = $('#tile-template').content.firstElementChild.cloneNode(true);
  el.dataset.tile = id;
  if (video) {
    $('video', el).replaceWith(video);
  }
  const tile = { el, video: $('video', el), p: null };
  state.tiles.set(id, tile);
  return tile;
}

/** tileFor returns the tile of a participant, creating a remote one when missing. */
function tileFor(id) {
  let tile = state.tiles.get(id);
  if (!tile) {
    tile = makeTile(id, null);
    tile.video.dataset.participant = id;
    $('[data-tiles]').append(tile.el);
    layoutTiles();
    playStream(id);
  }
  return tile;
}

/** renderTile shows a participant's name, microphone and camera state. */
function renderTile(tile, p) {
  tile.p = p;
  const you = state.you && p.id === state.you.id;
  $('[data-name]', tile.el).textContent = you ? `${p.name} (you)` : p.name;
  $('[data-muted]', tile.el).hidden = p.audio;
  tile.video.setAttribute('aria-label', you ? 'Your video' : `Video of ${p.name}`);
  setVideoShown(tile.el, p.video, p.name);
}

/** addSelfTile moves the local preview into the grid as your own tile. */
function addSelfTile(you) {
  const tile = makeTile(you.id, $('video[data-local]'));
  tile.el.classList.add('tile-self');
  $('[data-tiles]').prepend(tile.el);
  renderTile(tile, { ...you, audio: state.audio, video: state.video });
  tile.video.play().catch(() => {});
  layoutTiles();
}

/** removeTile drops a participant's tile. */
function removeTile(id) {
  const tile = state.tiles.get(id);
  if (!tile) {
    return;
  }
  tile.video.srcObject = null;
  tile.el.remove();
  state.tiles.delete(id);
  state.streams.delete(id);
  layoutTiles();
}

/**
 * attachStream keeps a stream received from a participant and plays it in
 * their tile. A stream of someone not (or no longer) in the room gets no tile.
 */
function attachStream(id, stream) {
  state.streams.set(id, stream);
  playStream(id);
}

/** playStream plays the stream received from a participant, if any, in their tile. */
function playStream(id) {
  const tile = state.tiles.get(id);
  const stream = state.streams.get(id);
  if (!tile || !stream || tile.video.srcObject === stream) {
    return;
  }
  tile.video.srcObject = stream;
  tile.video.play().catch(() => {});
}

/** clearTiles empties the grid and puts the local preview back in the device check. */
function clearTiles() {
  const slot = $('[data-preview-slot]');
  if (!$('video', slot)) {
    slot.prepend($('video[data-local]'));
  }
  for (const id of [...state.tiles.keys()]) {
    removeTile(id);
  }
}

// ---- Waiting list (therapists) ----------------------------------------

/** renderWaitingList shows who waits, with Admit and Deny for each. */
function renderWaitingList(waiting) {
  const list = $('[data-waiting-people]');
  list.replaceChildren();
  for (const person of waiting) {
    const li = $('#waiting-template').content.firstElementChild.cloneNode(true);
    $('[data-name]', li).textContent = person.name;
    for (const b of $$('button', li)) {
      b.dataset.participant = person.id;
      b.setAttribute('aria-label', `${b.textContent} ${person.name}`);
    }
    list.append(li);
  }
  $('[data-waiting-list]').hidden = waiting.length === 0;
}

// ---- Session ------------------------------------------------------------

/** join connects to the session with the previewed devices. */
async function join() {
  $('[data-action="join"]').disabled = true;
  announce('Connecting…');
  await state.preview;
  stopMeter();
  state.ending = null;
  state.joined = false;
  const session = new Session({ token: state.token, stream: state.stream, room: state.room });
  state.session = session;
  const handlers = {
    joined: onJoined,
    waiting: onWaiting,
    waiting_list: (d) => renderWaitingList(d.waiting || []),
    participant_joined: (d) => onParticipant(d.participant, true),
    participant_updated: (d) => onParticipant(d.participant, false),
    participant_left: onParticipantLeft,
    track: (d) => attachStream(d.participantId, d.stream),
    muted: onMuted,
    removed: onRemoved,
    ended: () => { state.ending = endedMessage; },
    redirect: (d) => location.assign(`${new URL('/join', d.url)}#token=${encodeURIComponent(state.token)}`),
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
  state.joined = true;
  state.you = msg.you;
  setRoomName(msg.room.title || msg.room.id);
  show('call');
  addSelfTile(msg.you);
  for (const p of msg.participants) {
    onParticipant(p, false);
  }
  if (!state.audio || !state.video) {
    state.session.setMedia(state.audio, state.video);
  }
  announce(`You are in the session. ${othersText()}`);
  $('[data-view="call"] [data-action="toggle-audio"]').focus();
}

/** othersText says how many others are in the session. */
function othersText() {
  const n = state.tiles.size - 1;
  return n === 0 ? 'Nobody else is here yet.' : n === 1 ? '1 other person is here.' : `${n} other people are here.`;
}

/** onWaiting shows the waiting room. */
function onWaiting(msg) {
  show('waiting');
  $('[data-position]').textContent = msg.position > 1 ? `${msg.position - 1} people are waiting ahead of you.` : '';
  announce('You are in the waiting room.');
}

/** onParticipant adds or updates a participant's tile, your own included. */
function onParticipant(p, arrived) {
  if (!p) {
    return;
  }
  renderTile(tileFor(p.id), p);
  if (arrived) {
    announce(`${p.name} joined.`);
  }
}

/** onParticipantLeft removes a tile. */
function onParticipantLeft(msg) {
  const tile = state.tiles.get(msg.id);
  if (tile && tile.p) {
    announce(`${tile.p.name} left.`);
  }
  removeTile(msg.id);
}

/** onMuted follows a therapist's mute. */
function onMuted(msg) {
  state[msg.kind === 'video' ? 'video' : 'audio'] = false;
  applyLocalMedia();
  announce(msg.kind === 'video' ? 'Your therapist turned your camera off.' : 'Your therapist muted your microphone.');
}

/** onRemoved keeps the reason a therapist removed or turned you away for the closing message. */
function onRemoved({ reason }) {
  if (reason === 'denied') {
    state.ending = {
      title: 'Your therapist did not let you in',
      text: 'Please contact your therapist or program if you think this is a mistake.',
    };
    return;
  }
  state.ending = {
    title: 'You were removed from the session',
    text: reason ? `Your therapist said: “${reason}”` : 'Please contact your program if you have questions.',
  };
}

/** onError keeps an error that ends the session for the closing message, and announces others. */
function onError(err) {
  if (!state.joined || closingCodes.has(err.code)) {
    state.ending = errorMessage(err);
    return;
  }
  announce(err.code === 'webrtc' ? 'There was a problem with the video connection.' : `Something did not work: ${err.message}`);
}

/** onClosed tears the session down and says why it ended. */
function onClosed({ reason }) {
  const wasJoined = state.joined;
  state.session = null;
  state.joined = false;
  state.you = null;
  renderWaitingList([]);
  clearTiles();
  stopDevices();
  if (reason === 'left') {
    showMessage({ title: 'You left the session', text: 'You can close this page, or join again if you left by mistake.', retry: true });
  } else if (state.ending) {
    showMessage(state.ending);
  } else {
    showMessage({
      title: wasJoined ? 'The connection was lost' : 'We could not reach the session',
      text: 'Check your internet connection, then try again.',
      retry: true,
    });
  }
}

/** leave leaves the session or the waiting room. */
function leave() {
  if (state.session) {
    state.session.leave();
  }
}

/** rejoin goes back to the device check. */
function rejoin() {
  state.audio = true;
  state.video = true;
  showPrejoin();
}

/** showPrejoin shows the device check and starts the preview. */
function showPrejoin() {
  const room = state.claims?.room;
  setRoomName(room && room !== '*' ? room : state.room);
  $('[data-action="join"]').disabled = false;
  show('prejoin');
  state.preview = startPreview();
}

// ---- Start --------------------------------------------------------------

/** onClick dispatches the page's buttons by their data-action. */
function onClick(e) {
  const b = e.target.closest('button[data-action]');
  if (!b || b.disabled) {
    return;
  }
  const actions = {
    join,
    leave,
    rejoin,
    'toggle-audio': () => toggle('audio'),
    'toggle-video': () => toggle('video'),
    admit: () => state.session?.admit(b.dataset.participant),
    deny: () => state.session?.deny(b.dataset.participant),
  };
  actions[b.dataset.action]?.();
}

function main() {
  document.addEventListener('click', onClick);
  new ResizeObserver(layoutTiles).observe($('[data-stage]'));
  state.token = readToken();
  if (!state.token) {
    show('no-token');
    return;
  }
  state.claims = decodeClaims(state.token);
  $('[data-who]').textContent = describeInvite(state.claims);
  showPrejoin();
}

main();
