// join.js is the page behind a join link (/join#token=<JWT>): a device check
// with a camera preview, the waiting room, then the session's video grid and
// controls, with the therapist's console for therapists. It uses protocol.js
// for everything on the wire and owns only the page.
//
// The words on screen are for people in recovery, often on a phone and under
// stress: plain, kind, and never blaming.

import { LAYER_ID, Session } from './protocol.js';
import { decodeClaims, expired, getJSON, seg, tabStore } from './api.js';
import { capitalize, currentWeek, dayText, minutesWords, sessionName, timeText, validDate, weekRange, weekString, whenText } from './format.js';
import { clientStatusText, daysGoal, hoursGoal, statusClass } from './attendance.js';
import { Chat } from './chat.js';
import { renderCheckIn, Telehealth, telehealthErrors } from './checkin.js';
import { Breakouts } from './breakout.js';
import { Stage } from './screen.js';
import { checkConnectivity } from './connectivity.js';
import { judge, measure, WEAK_WINDOW } from './linkquality.js';

/** What each server error code means for the person, and whether trying again can help. */
const errorMessages = {
  unauthorized: {
    title: 'This join link does not work',
    text: 'It may have expired or already been used, or part of it may be missing. Please ask your program for a new link.',
  },
  forbidden: {
    title: 'This link cannot be used for this session',
    text: 'Please contact your program. They will help you find the right link.',
  },
  room_full: {
    title: 'This session is full',
    text: 'All the places in this session are taken right now. Please contact your therapist or program, and they will help you.',
    retry: true,
  },
  locked: {
    title: 'This session is closed to new arrivals',
    text: 'Your therapist has closed the session to new people for now. If you think you should be there, please contact them.',
    retry: true,
  },
  removed: {
    title: 'You cannot rejoin this session',
    text: 'You were taken out of this session earlier, so it cannot be joined again. Please contact your therapist or program about your next session.',
  },
  not_enrolled: {
    title: 'This session is not on your schedule',
    text: 'Your link is not set up for this session. Please contact your program, and they will help you find your sessions.',
  },
  wrong_track: {
    title: 'This session is for another group',
    text: 'It belongs to another track of your program, so it cannot be joined with this link. If you think this is a mistake, please contact your program.',
  },
  too_early: {
    title: 'It is a little early to join',
    text: 'The session opens shortly before it starts. Please come back then.',
    retry: true,
  },
  too_late: {
    title: 'This session is no longer open',
    text: 'It has ended, or the time to join has passed.',
  },
  cancelled: {
    title: 'This session is not meeting',
    text: 'It was cancelled, or falls on a holiday. Your therapist or program can tell you more.',
  },
  ended: {
    title: 'This session has ended',
    text: 'Your therapist has ended this session. Thank you for being here. Your program can tell you when your next session is.',
    retry: true,
    retryLabel: 'Check again',
  },
  replaced: {
    title: 'This session is open in another window',
    text: 'You joined from another window or device, so this one was closed. Use the other one, or join again here.',
    retry: true,
    retryLabel: 'Join here instead',
  },
  moved: {
    title: 'You joined another session',
    text: 'You can be in one session at a time, so this one was closed when you joined the other. Use the other one, or join again here.',
    retry: true,
    retryLabel: 'Join here instead',
  },
  too_many_connections: {
    title: 'Too many connections from your network',
    text: 'Please wait a minute, then try again. If it keeps happening, tell your program.',
    retry: true,
  },
  too_many_joins: {
    title: 'Too many tries at once',
    text: 'Please wait a few seconds, then try again.',
    retry: true,
  },
  ...telehealthErrors,
  node_full: {
    title: 'The service is busy right now',
    text: 'Please wait a minute, then try again. If it keeps happening, tell your program.',
    retry: true,
  },
};

/**
 * What the link check (GET /v1/link) says about a link that cannot be used,
 * shown before the camera turns on. Each refusal has its own words.
 */
const linkMessages = {
  invalid: {
    title: 'This join link does not work',
    text: 'Part of it may be missing or changed. Open the link exactly as your program sent it, for example by clicking it in the email or text message. If it still does not work, ask your program for a new link.',
  },
  expired: {
    title: 'This join link has expired',
    text: 'Join links work for a limited time. Please ask your therapist or program for a new link.',
  },
  not_yet_valid: {
    title: 'This link is not active yet',
    text: 'It starts working closer to your session. Please open it again later.',
    retry: true,
    retryLabel: 'Check again',
  },
  used: {
    title: 'This invitation has already been used',
    text: 'Each invitation works once. Please ask the therapist for a new one.',
  },
  removed: errorMessages.removed,
  blocked: {
    title: 'Your access is paused',
    text: 'Your program has paused access to sessions for now. Please contact them; they will help you.',
  },
  ended: errorMessages.ended,
};

/** How long after leaving a call a reload of the page goes straight back in, in milliseconds (the server keeps the seat 60 s). */
const RESUME_FOR = 55000;

/** The link of this tab, kept across reloads (sessionStorage). */
const kept = tabStore('join');

/** The message for an error code nobody expects a person to understand. */
const genericError = {
  title: 'Something went wrong',
  text: 'We could not connect you to the session. Please try again in a moment.',
  retry: true,
};

/** The closing message when the therapist ends the session. */
const endedMessage = {
  title: 'The session has ended',
  text: 'Thank you for being here today. You can close this page now.',
};

/** What follows every message about being taken out of a session. */
const supportText = 'If you have questions or need support, please contact your therapist or program.';

/** Server errors that close the connection even after joining (docs/protocol.md, "Error codes"). */
const closingCodes = new Set(['too_large', 'join_timeout', 'rate_limited', 'replaced', 'moved', 'too_many_connections', 'too_many_joins']);

/** What to say when something the person did in the session was refused. */
const actionErrors = {
  not_found: 'That person has already left, or is no longer waiting.',
  forbidden: 'Only the host of this session can do that.',
  not_admitted: 'You can do that once you are in the session.',
  webrtc: 'There was a problem with the video connection.',
};

/** How roles are named to the person. */
const roleNames = {
  therapist: 'therapist',
  client: 'client',
  family: 'family member',
  staff: 'staff',
};

/** How many of the next sessions the device check lists. */
const NEXT_SESSIONS_SHOWN = 4;

/** How many redirects to another server a join may follow before giving up. */
const MAX_REDIRECTS = 3;

/** How often the therapist's console refreshes the minutes present, in milliseconds. */
const MINUTES_REFRESH = 15000;

/**
 * Rejoining after a lost connection: the first try after RECONNECT_FIRST ms,
 * each next one after twice as long, and no new try RECONNECT_FOR ms after the
 * loss (the server keeps the seat for 60 s).
 */
const RECONNECT_FIRST = 1000;
const RECONNECT_MAX_DELAY = 8000;
const RECONNECT_FOR = 45000;

/** How often the call reads its receive statistics (speaker, weak link), in milliseconds. */
const STATS_EVERY = 300;

/** A remote audioLevel (0..1) at or above this counts as speaking. */
const SPEAKING_LEVEL = 0.04;

/** How often the link's quality is sampled, in STATS_EVERY ticks (about once a second). */
const LINK_EVERY = 3;

/**
 * The widths in pixels of the simulcast layers of a 1280-wide camera, smallest
 * first, with the quality the layer message names them by. Each tile asks
 * for the smallest layer at least as wide as the tile shows it.
 */
const LAYERS = [
  { quality: 'low', width: 320 },
  { quality: 'medium', width: 640 },
  { quality: 'high', width: 1280 },
];

/** How long tile sizes may settle before the layers are chosen again, in milliseconds. */
const LAYER_SETTLE = 250;

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** The page's state; there is one session at a time. */
const state = {
  token: '',
  room: '', // only for a token valid in any room
  resume: '', // the resume secret of the last joined: brings this page back in after a lost connection
  host: '', // the participant id of the session's host, while in the room
  claims: null,
  autoJoin: false, // join without a click: set after a redirect to another server
  hops: 0, // redirects followed so far
  redirecting: false,
  stream: null,
  preview: null, // the promise of the local stream
  meter: null,
  audio: true,
  video: true,
  hand: false,
  session: null,
  waited: false, // this join went through the waiting room
  joined: false,
  you: null,
  locked: false,
  waiting: [], // therapists: who waits, [{id, name, role}]
  denied: new Set(), // therapists: the waiting people this page turned away, until the list says they are gone
  unloading: false, // the page is being reloaded or closed: keep the place for a reload
  hands: [], // participant ids with a raised hand, in the order they were raised
  seen: new Map(), // participant id -> when this page first saw them in the session (ms)
  minutesTimer: 0,
  tiles: new Map(), // participant id -> {el, video, p}
  streams: new Map(), // participant id -> the MediaStream received from them
  noticeKind: '', // the kind ("audio", "video") the notice about a therapist's mute is about
  ending: null, // what the server said before closing: {title, text, next, quote, extra, retry}
  zone: '', // the program's time zone, once the server said it
  sessionTitle: '', // the title of the session this link is for, once the schedule said it
  reconnect: null, // while rejoining after a lost connection: {since, attempt, timer}
  audioOnly: false, // the person chose to send and see no video
  videoBefore: true, // the camera state before audio-only mode
  devices: { videoinput: '', audioinput: '', audiooutput: '' }, // chosen device ids ('' = default)
  stats: null, // the receive statistics loop: {timer, busy, samples, weakShown}
  checking: false, // the connection check runs
  layerTimer: 0, // a pending choice of the others' video layers
  tileSizes: null, // a ResizeObserver of the others' tiles
  tileSight: null, // an IntersectionObserver of the others' tiles on the stage
  link: null, // what the link check said (GET /v1/link): status, and a client's consent and check-in owed
  checkin: null, // a client's check-in for this session, sent in the join
};

// ---- Token -------------------------------------------------------------

/**
 * readToken takes the token (and the room, for a token valid in any room)
 * from the URL fragment and removes them from the visible URL.
 */
function readToken() {
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
function keepPlace(where) {
  kept.set({ token: state.token, room: state.room, where, resume: where === 'call' ? state.resume : '', at: Date.now() });
}

/**
 * checkLink asks the server whether the link works (GET /v1/link) and
 * returns the message to show instead of the device check, or null. A
 * failed check lets the join itself say what is wrong.
 */
async function checkLink() {
  const q = state.room ? `?room=${encodeURIComponent(state.room)}` : '';
  try {
    state.link = await getJSON(state.token, `/v1/link${q}`);
    return linkMessages[state.link.status] || null;
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

/**
 * showMessage ends on a message, with a button labelled retryLabel when
 * trying again can help: quote is someone's own words (the therapist's
 * reason), extra a second, quieter paragraph.
 */
function showMessage({ title, text, next = '', quote = '', extra = '', retry = false, retryLabel = 'Try again' }) {
  $('[data-message-title]').textContent = title;
  $('[data-message-text]').textContent = text;
  const n = $('[data-message-next]');
  n.textContent = next;
  n.hidden = !next;
  $('[data-message-week]').hidden = true;
  const q = $('[data-message-quote]');
  q.textContent = quote;
  q.hidden = !quote;
  const x = $('[data-message-extra]');
  x.textContent = extra;
  x.hidden = !extra;
  const again = $('[data-action="rejoin"]');
  again.textContent = retryLabel;
  again.hidden = !retry;
  show('message');
  announce('');
  $('[data-message-title]').focus();
}

/** joiningRoom is the room this page joins: the token's, or the link's for a token valid in any room. */
function joiningRoom() {
  const room = state.claims?.room;
  return room && room !== '*' ? room : state.room;
}

/**
 * nextText says when someone's next session is:
 * "Your next session: Relapse prevention, Monday at 9:00 AM. It opens at 8:50 AM."
 */
function nextText(next) {
  const start = validDate(next.start);
  if (!start) {
    return '';
  }
  let text = `Your next session: ${sessionName(next)}, ${dayText(start)} at ${timeText(start)}.`;
  const opens = validDate(next.join_opens);
  if (opens && opens > Date.now() && opens < start) {
    text += ` You can join from ${timeText(opens)}.`;
  }
  return text;
}

/**
 * errorMessage returns what to tell the person about a server error. A
 * refusal of a scheduled session carries next, the person's next session
 * (docs/protocol.md: room, title, kind, start, end, start_local, join_opens,
 * time_zone), which the message names in their own time zone.
 */
function errorMessage({ code, next }) {
  const m = errorMessages[code] || genericError;
  next = next && typeof next === 'object' && validDate(next.start) ? next : null;
  if (!next) {
    return m;
  }
  if (code === 'too_early' && next.room === joiningRoom()) {
    const opens = validDate(next.join_opens);
    if (opens) {
      const lead = Math.round((validDate(next.start) - opens) / 60000);
      const before = lead > 0 ? ` (${minutesWords(lead)} before it starts)` : '';
      const soon = opens - Date.now() < 3 * 3600 * 1000;
      return {
        ...m,
        title: soon ? m.title : 'This session is not open yet',
        text: `This session opens ${whenText(opens)}${before}. Please come back then.`,
      };
    }
  }
  if (code === 'too_early') {
    return { ...m, title: 'This session is not open yet', text: 'It opens shortly before it starts.', next: nextText(next), retry: false };
  }
  return { ...m, next: nextText(next) };
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
  const chosen = (kind) => (state.devices[kind] ? { deviceId: { exact: state.devices[kind] } } : {});
  // 1280x720 when the camera can, for the full simulcast layer; ideal never fails.
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, ...chosen('videoinput') };
  const audio = state.devices.audioinput ? chosen('audioinput') : true;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (err) {
    if (err.name === 'NotAllowedError') {
      throw err;
    }
    return navigator.mediaDevices.getUserMedia({ audio });
  }
}

/** canChooseSpeaker reports whether this browser can play sound on a chosen output. */
function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * listDevices fills the camera, microphone and speaker choices of the device
 * check, marking the devices in use; a kind with no device hides its choice.
 */
async function listDevices() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    devices = [];
  }
  const inUse = {
    videoinput: state.stream?.getVideoTracks()[0]?.getSettings().deviceId || '',
    audioinput: state.stream?.getAudioTracks()[0]?.getSettings().deviceId || '',
    audiooutput: state.devices.audiooutput,
  };
  const names = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };
  let any = false;
  for (const sel of $$('select[data-device]')) {
    const kind = sel.dataset.device;
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    const field = sel.closest('[data-device-field]');
    const shown = list.length > 0 && (kind !== 'audiooutput' || canChooseSpeaker());
    field.hidden = !shown;
    any = any || shown;
    sel.replaceChildren(...list.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${names[kind]} ${i + 1}`;
      o.selected = d.deviceId === inUse[kind];
      return o;
    }));
  }
  $('[data-devices]').hidden = !any;
}

/** chooseDevice switches to the camera, microphone or speaker chosen in the device check. */
function chooseDevice(sel) {
  const kind = sel.dataset.device;
  state.devices[kind] = sel.value;
  if (kind === 'audiooutput') {
    for (const v of $$('video[data-participant]')) {
      applySink(v);
    }
    return;
  }
  stopDevices();
  state.preview = startPreview();
}

/** applySink plays a remote video's sound on the chosen speaker. */
function applySink(video) {
  if (state.devices.audiooutput && canChooseSpeaker()) {
    video.setSinkId(state.devices.audiooutput).catch(() => {});
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
  await listDevices();
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
    b.disabled = !hasTrack('video') || state.audioOnly;
    b.classList.toggle('btn-off', !state.video);
  }
  setVideoShown($('[data-preview-slot]'), state.video, state.claims?.name);
}

/**
 * toggle flips the microphone or camera and tells the room when in a
 * session. Turning a kind back on after a therapist muted it is the
 * person's choice: the server forwards it again.
 */
function toggle(kind) {
  state[kind] = !state[kind];
  applyLocalMedia();
  if (state[kind] && state.noticeKind === kind) {
    hideNotice();
  }
  if (state.joined) {
    state.session.setMedia(state.audio, state.video);
    renderSelf();
  }
}

/** toggleHand raises or lowers your hand. */
function toggleHand() {
  if (!state.joined) {
    return;
  }
  state.hand = !state.hand;
  state.session.raiseHand(state.hand);
  renderHandButton();
  renderSelf();
  announce(state.hand ? 'You raised your hand. Your therapist can see it.' : 'You lowered your hand.');
}

/** renderHandButton shows whether your hand is raised. */
function renderHandButton() {
  const b = $('[data-action="hand"]');
  b.textContent = state.hand ? 'Lower hand' : 'Raise hand';
  b.setAttribute('aria-pressed', String(state.hand));
  b.classList.toggle('btn-on', state.hand);
}

/** renderSelf shows your own microphone, camera and hand state on your tile. */
function renderSelf() {
  const you = state.you && state.tiles.get(state.you.id);
  if (you) {
    renderTile(you, { ...you.p, audio: state.audio, video: state.video, hand: state.hand });
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

/** Below this stage width in CSS pixels (phones held upright) a one-to-one call shows your own view small, in a corner. */
const PIP_BELOW = 420;

/**
 * layoutTiles sizes the tiles so that all of them fit on the stage, as large
 * as they can be: it tries every column count, and sets the tile width and
 * the grid width that the grid's auto-fit columns follow.
 */
function layoutTiles() {
  const stage = $('[data-stage]');
  const grid = $('[data-tiles]');
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
  const width = stage.clientWidth;
  const height = stage.clientHeight;
  // One to one on a narrow screen (a phone): the other person fills the
  // stage and your own view is a small picture in its corner.
  const shown = [...grid.children].filter((el) => !el.hidden).length; // breakouts hide the other groups
  const pip = stage.dataset.layout === 'grid' && shown === 2 && !!$('.tile-self', grid) && width > 0 && width < PIP_BELOW;
  grid.classList.toggle('tiles-pip', pip);
  const n = pip ? 1 : shown;
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
  // layer: the quality last asked for of their video; shown: on the stage's visible part.
  const tile = { el, video: $('video', el), p: null, layer: '', shown: true };
  state.tiles.set(id, tile);
  return tile;
}

/** tileFor returns the tile of a participant, creating a remote one when missing. */
function tileFor(id) {
  let tile = state.tiles.get(id);
  if (!tile) {
    tile = makeTile(id, null);
    tile.video.dataset.participant = id;
    tile.video.addEventListener('loadedmetadata', scheduleLayers);
    $('[data-tiles]').append(tile.el);
    watchTile(tile, true);
    layoutTiles();
    playStream(id);
    layout.tilesChanged();
  }
  return tile;
}

/** renderTile shows a participant's name, microphone, camera and hand state. */
function renderTile(tile, p) {
  tile.p = p;
  const you = state.you && p.id === state.you.id;
  $('[data-name]', tile.el).textContent = you ? `${p.name} (you)` : p.name;
  $('[data-muted]', tile.el).hidden = p.audio;
  $('[data-camera-off]', tile.el).hidden = p.video;
  $('[data-hand]', tile.el).hidden = !p.hand;
  tile.el.classList.toggle('tile-hand', !!p.hand);
  tile.video.setAttribute('aria-label', you ? 'Your video' : `Video of ${p.name}`);
  setVideoShown(tile.el, p.video, p.name);
  scheduleLayers();
}

/** addSelfTile moves the local preview into the grid as your own tile. */
function addSelfTile(you) {
  const tile = makeTile(you.id, $('video[data-local]'));
  // After a reconnection, your tile of the lost connection goes (its video moved).
  for (const [id, t] of state.tiles) {
    if (t !== tile && t.el.classList.contains('tile-self')) {
      t.el.remove();
      state.tiles.delete(id);
    }
  }
  tile.el.classList.add('tile-self');
  $('[data-tiles]').prepend(tile.el);
  renderTile(tile, { ...you, audio: state.audio, video: state.video, hand: state.hand });
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
  watchTile(tile, false);
  tile.el.remove();
  state.tiles.delete(id);
  state.streams.delete(id);
  layoutTiles();
  layout.tilesChanged();
}

/**
 * attachStream keeps a stream received from a participant and plays it in
 * their tile. A stream of someone not (or no longer) in the room gets no tile.
 * A new video track starts at the server's default layer: the layer that
 * fits the tile is asked for again.
 */
function attachStream(id, stream, track) {
  state.streams.set(id, stream);
  const tile = state.tiles.get(id);
  if (tile && track?.kind === 'video') {
    tile.layer = '';
  }
  playStream(id);
  scheduleLayers();
}

/** playStream plays the stream received from a participant, if any, in their tile. */
function playStream(id) {
  const tile = state.tiles.get(id);
  const stream = state.streams.get(id);
  if (!tile || !stream || tile.video.srcObject === stream) {
    return;
  }
  tile.video.srcObject = stream;
  applySink(tile.video);
  for (const t of stream.getVideoTracks()) {
    t.enabled = !state.audioOnly;
  }
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

// ---- Simulcast layers -----------------------------------------------------

/**
 * watchTile starts (or stops) following a remote tile's size and whether it
 * is on the visible part of the stage, for choosing its layer.
 */
function watchTile(tile, on) {
  for (const o of [state.tileSizes, state.tileSight]) {
    if (o && on) {
      o.observe(tile.el);
    } else if (o) {
      o.unobserve(tile.el);
    }
  }
}

/** onTileSight records which tiles are on the visible part of the stage. */
function onTileSight(entries) {
  for (const e of entries) {
    const tile = state.tiles.get(e.target.dataset.tile);
    if (tile) {
      tile.shown = e.isIntersecting;
    }
  }
  scheduleLayers();
}

/**
 * drawnWidth is the width in CSS pixels at which a tile draws its video:
 * the video covers the tile (object-fit: cover), so a picture wider than
 * the tile is drawn wider than the tile and cropped at the sides. Until the
 * video's size is known, it counts as 16:9.
 */
function drawnWidth(video) {
  const aspect = video.videoWidth > 0 && video.videoHeight > 0 ? video.videoWidth / video.videoHeight : 16 / 9;
  return Math.max(video.clientWidth, video.clientHeight * aspect);
}

/**
 * wantedQuality returns the layer a remote tile needs: "low" when its video
 * is not shown (camera off, audio only, scrolled away, page hidden), else
 * the smallest layer that covers the device pixels it is drawn on.
 */
function wantedQuality(tile) {
  if (!tile.p?.video || state.audioOnly || !tile.shown || document.hidden) {
    return LAYERS[0].quality;
  }
  const need = drawnWidth(tile.video) * (window.devicePixelRatio || 1);
  const fit = LAYERS.find((l) => l.width >= need) || LAYERS[LAYERS.length - 1];
  return fit.quality;
}

/**
 * chooseLayers asks the server for the layer that fits each remote tile
 * whose video has arrived, when it differs from the one asked for last.
 */
function chooseLayers() {
  if (!state.joined || !state.session) {
    return;
  }
  for (const [id, tile] of state.tiles) {
    const stream = state.streams.get(id);
    if (id === state.you?.id || !stream || stream.getVideoTracks().length === 0) {
      continue;
    }
    const quality = wantedQuality(tile);
    if (quality !== tile.layer) {
      tile.layer = quality;
      state.session.setLayer(id, quality);
    }
  }
}

/**
 * scheduleLayers chooses the layers once the layout has settled for
 * LAYER_SETTLE ms, so that a window being resized sends a few messages,
 * not one per frame.
 */
function scheduleLayers() {
  clearTimeout(state.layerTimer);
  state.layerTimer = setTimeout(() => {
    state.layerTimer = 0;
    chooseLayers();
  }, LAYER_SETTLE);
}

// ---- Notices in the call ------------------------------------------------

/** showNotice shows a message above the video that stays until dismissed. */
function showNotice(text, kind = '') {
  $('[data-notice-text]').textContent = text;
  $('[data-notice]').hidden = false;
  state.noticeKind = kind;
  announce(text);
}

/** hideNotice removes the notice above the video. */
function hideNotice() {
  $('[data-notice]').hidden = true;
  state.noticeKind = '';
}

// ---- Therapist console --------------------------------------------------

/** isTherapist reports whether you lead this session (the server decides what you may do). */
function isTherapist() {
  return state.joined && state.you?.role === 'therapist';
}

/** isHost reports whether you are the session's host (the server's host rule decides). */
function isHost() {
  return isTherapist() && (!state.host || state.host === state.you.id);
}

/** leads reports whether you may end the session and hand the host role over: the host, or any therapist while the host is away. */
function leads() {
  return isHost() || (isTherapist() && !state.tiles.has(state.host));
}

/** mayModerate mirrors the server's host rule: the host moderates anyone, a co-therapist clients and family. */
function mayModerate(p) {
  return isHost() || p.role === 'client' || p.role === 'family';
}

/** nameOf returns how to name a participant in the console, with their role when not a client. */
function nameOf(p) {
  if (p.id && p.id === state.host) {
    return `${p.name} (host)`;
  }
  return p.role && p.role !== 'client' ? `${p.name} (${roleNames[p.role] || p.role})` : p.name;
}

/**
 * syncList makes the items of list match items (each with an id), keeping
 * the elements of the ones that stay so that keyboard focus stays on them.
 * When the focused row goes, focus moves to the same button of the row
 * that took its place, or to fallback.
 */
function syncList(list, items, make, update, fallback) {
  const active = document.activeElement;
  const keep = new Set(items.map((it) => it.id));
  let lostAt = -1;
  [...list.children].forEach((li, i) => {
    if (!keep.has(li.dataset.key)) {
      if (li.contains(active)) {
        lostAt = i;
      }
      li.remove();
    }
  });
  const rows = new Map([...list.children].map((li) => [li.dataset.key, li]));
  items.forEach((it, i) => {
    let li = rows.get(it.id);
    if (!li) {
      li = make();
      li.dataset.key = it.id;
    }
    update(li, it);
    if (list.children[i] !== li) {
      list.insertBefore(li, list.children[i] || null);
    }
  });
  if (lostAt >= 0) {
    const li = list.children[Math.min(lostAt, list.children.length - 1)];
    const same = li && active.dataset.action ? $(`[data-action="${active.dataset.action}"]`, li) : null;
    (same || fallback).focus();
  }
}

/** fromTemplate clones the first element of a template. */
function fromTemplate(id) {
  return $(`#${id}`).content.firstElementChild.cloneNode(true);
}

/** renderConsole shows or hides the console and fills it in. */
function renderConsole() {
  const on = isTherapist();
  // The aside, by its tag: the body carries data-has-console for the layout,
  // and a selector that could match the body once hid the whole page.
  $('aside[data-console]').hidden = !on;
  document.body.toggleAttribute('data-has-console', on);
  // A therapist has the floor already, and ends the session rather than leaving it.
  $('[data-action="hand"]').hidden = on;
  $('[data-view="call"] [data-action="end"]').hidden = !leads();
  $('[data-view="call"] [data-action="leave"]').classList.toggle('btn-leave', !on);
  clearInterval(state.minutesTimer);
  state.minutesTimer = 0;
  if (on) {
    state.minutesTimer = setInterval(renderPresent, MINUTES_REFRESH);
  }
  renderWaitingList();
  renderPresent();
  renderHands();
  renderLock();
}

/** renderWaitingList shows who waits, with Admit and Deny for each and Admit all. */
function renderWaitingList() {
  const waiting = isTherapist() ? state.waiting : [];
  syncList($('[data-waiting-people]'), waiting, () => fromTemplate('waiting-template'), (li, person) => {
    $('[data-name]', li).textContent = nameOf(person);
    renderCheckIn($('[data-checkin]', li), person.checkin);
    for (const b of $$('button', li)) {
      b.dataset.participant = person.id;
    }
    $('[data-action="admit"]', li).setAttribute('aria-label', `Admit ${person.name}`);
    $('[data-action="deny"]', li).setAttribute('aria-label', `Deny ${person.name}: do not let them in`);
  }, $('#waiting-list-title'));
  $('[data-waiting-count]').textContent = waiting.length ? `(${waiting.length})` : '';
  $('[data-waiting-empty]').hidden = waiting.length > 0;
  $('[data-action="admit"][data-participant="*"]').hidden = waiting.length < 2;
  document.title = waiting.length ? `(${waiting.length} waiting) Join your session` : 'Join your session';
}

/** minutesText says how long someone has been here, as this page saw it. */
function minutesText(id) {
  const since = state.seen.get(id);
  if (since === undefined) {
    return '';
  }
  const min = Math.floor((Date.now() - since) / 60000);
  return min < 1 ? 'here under a minute' : `here ${min} min`;
}

/**
 * How a participant's media reaches the server, as the console names it:
 * what the therapist may tell someone whose video is slow.
 */
const transportNames = {
  udp: ['Network: UDP', 'Direct connection (UDP): the best path.'],
  tcp: ['Network: TCP', 'Direct connection over TCP: their network blocks UDP; video may lag a little.'],
  relay: ['Network: relay', 'Connected through a relay (TURN): their network blocks direct connections; video may be slower.'],
};

/** renderPresent lists everyone else in the session with their state and the therapist's controls. */
function renderPresent() {
  const people = isTherapist() ? [...state.tiles.values()].map((t) => t.p).filter((p) => p && p.id !== state.you.id) : [];
  syncList($('[data-present]'), people, () => fromTemplate('present-template'), (li, p) => {
    $('[data-name]', li).textContent = nameOf(p);
    const flags = [];
    if (p.hand) {
      flags.push('hand raised');
    }
    if (!p.audio) {
      flags.push('muted');
    }
    if (!p.video) {
      flags.push('camera off');
    }
    flags.push(minutesText(p.id));
    $('[data-state]', li).textContent = flags.filter(Boolean).join(' · ');
    const [transport, explain] = transportNames[p.transport] || ['', ''];
    const tr = $('[data-transport]', li);
    tr.textContent = transport;
    tr.title = explain;
    tr.dataset.value = p.transport || '';
    renderCheckIn($('[data-checkin]', li), p.checkin);
    const buttons = {
      'mute-audio': [`Mute ${p.name}’s microphone`, !p.audio],
      'mute-video': [`Stop ${p.name}’s video`, !p.video],
      remove: [`Remove ${p.name} from the session`, false],
    };
    const moderated = mayModerate(p);
    for (const [action, [label, off]] of Object.entries(buttons)) {
      const b = $(`[data-action="${action}"]`, li);
      b.dataset.participant = p.id;
      b.setAttribute('aria-label', label);
      b.hidden = !moderated;
      // aria-disabled rather than disabled, so that focus stays on the button.
      b.setAttribute('aria-disabled', String(off));
    }
    const handOver = $('[data-action="make-host"]', li);
    handOver.dataset.participant = p.id;
    handOver.setAttribute('aria-label', `Make ${p.name} the host of this session`);
    handOver.hidden = !(leads() && p.role === 'therapist');
  }, $('#present-title'));
  $('[data-present-count]').textContent = people.length ? `(${people.length})` : '';
  $('[data-present-empty]').hidden = people.length > 0;
}

/** renderHands lists the raised hands, first raised first. */
function renderHands() {
  const hands = isTherapist() ? state.hands.map((id) => state.tiles.get(id)?.p).filter(Boolean) : [];
  const list = $('[data-hands]');
  list.replaceChildren(...hands.map((p) => {
    const li = document.createElement('li');
    li.textContent = p.name;
    return li;
  }));
  $('[data-hands-section]').hidden = hands.length === 0;
}

/** renderLock shows whether the session is locked. */
function renderLock() {
  const b = $('[data-action="lock"]');
  b.textContent = state.locked ? 'Unlock room' : 'Lock room';
  $('[data-lock-state]').textContent = state.locked
    ? 'Locked: nobody new can join. People already waiting can still be let in.'
    : 'Open: people with a link for this session can join.';
  const auto = $('[data-action="auto-admit"]');
  auto.setAttribute('aria-pressed', String(!!state.autoAdmit));
  auto.textContent = state.autoAdmit ? 'People come in without waiting (turn off)' : 'Let people in automatically';
}

/** trackHand keeps the order of raised hands and tells the therapist about a new one. */
function trackHand(p) {
  const i = state.hands.indexOf(p.id);
  if (p.hand && i < 0) {
    state.hands.push(p.id);
    if (state.you && p.id !== state.you.id) {
      announce(`${p.name} raised their hand.`);
    }
  } else if (!p.hand && i >= 0) {
    state.hands.splice(i, 1);
  }
}

// ---- Dialogs --------------------------------------------------------------

/**
 * ask opens a confirmation dialog and resolves to whether the person
 * confirmed. Escape and Cancel say no.
 */
function ask(name) {
  const dialog = $(`dialog[data-dialog="${name}"]`);
  const opener = document.activeElement;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      if (opener && opener.isConnected && !opener.closest('[hidden]')) {
        opener.focus();
      }
    }, { once: true });
  });
}

/** closeDialogs closes any open dialog, as when the session ends under it. */
function closeDialogs() {
  for (const d of $$('dialog[open]')) {
    d.close('cancel');
  }
}

/** askRemove asks the therapist for a short reason, then removes a participant. */
async function askRemove(id) {
  const p = state.tiles.get(id)?.p;
  if (!p) {
    return;
  }
  const dialog = $('dialog[data-dialog="remove"]');
  $('[data-dialog-name]', dialog).textContent = p.name;
  $('[data-dialog-confirm]', dialog).textContent = `Remove ${p.name}`;
  const input = $('[data-remove-reason]', dialog);
  input.value = '';
  if (await ask('remove')) {
    state.session?.remove(id, input.value.trim());
    announce(`${p.name} was removed from the session.`);
  }
}

/** askEnd asks the therapist to confirm, then ends the session for everyone. */
async function askEnd() {
  if (await ask('end')) {
    state.session?.end();
  }
}

/** mute asks the server to mute a participant's microphone or camera. */
function mute(b, kind) {
  if (b.getAttribute('aria-disabled') === 'true') {
    return;
  }
  state.session?.mute(b.dataset.participant, kind);
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
  state.waited = false;
  connectSession();
}

/** connectSession opens a session with the token and the local stream, and follows its events. */
function connectSession() {
  const session = new Session({ token: state.token, stream: state.stream, room: state.room, resume: state.resume, checkin: state.checkin });
  state.session = session;
  const handlers = {
    joined: onJoined,
    waiting: onWaiting,
    waiting_list: onWaitingList,
    participant_joined: (d) => onParticipant(d.participant, true),
    participant_updated: (d) => onParticipant(d.participant, false),
    participant_left: onParticipantLeft,
    track: (d) => (d.screen ? layout.screenTrack(d) : attachStream(d.participantId, d.stream, d.track)),
    screen_ended: () => layout.captureEnded(),
    muted: onMuted,
    removed: onRemoved,
    ended: () => { state.ending = endedMessage; },
    room_updated: onRoomUpdated,
    chat: (d) => chat.add(d),
    chat_removed: (d) => chat.remove(d.message_id),
    breakout: (d) => breakouts.update(d),
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
  const back = !!state.reconnect;
  endReconnect();
  state.joined = true;
  state.resume = msg.resume || '';
  keepPlace('call');
  state.host = msg.room.host || '';
  state.autoAdmit = !!msg.room.auto_admit;
  chat.start({ therapist: msg.you.role === 'therapist', enabled: msg.room.chat, keep: back });
  breakouts.start({ you: msg.you, room: msg.room });
  state.you = msg.you;
  state.locked = !!msg.room.locked;
  setRoomName(msg.room.title || msg.room.id);
  show('call');
  layout.start(msg.room);
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

/** Why the console says someone was turned away at the door. */
const turnedAwayWords = {
  locked: 'the room is locked',
  room_full: 'the session is full',
};

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
  breakouts.seen(p);
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
  chat.setEnabled(room.chat !== false);
  layout.setRoom(room);
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
  if (err.re === LAYER_ID || layout.error(err)) {
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
  const rejoining = !!state.reconnect;
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
  chat.stop();
  breakouts.stop();
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
function leave() {
  if (state.session) {
    state.session.leave();
  } else if (state.reconnect) {
    onClosed({ reason: 'left' });
  }
}

// ---- Reconnecting ---------------------------------------------------------

/**
 * reconnectDelay returns how long to wait before the next try to rejoin, or
 * -1 when the time for trying is over.
 */
function reconnectDelay() {
  const r = state.reconnect;
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
function dropCall() {
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
function scheduleReconnect() {
  const delay = reconnectDelay();
  if (!state.reconnect) {
    state.reconnect = { since: Date.now(), attempt: 0, timer: 0, guard: 0 };
    $('[data-reconnecting]').hidden = false;
    show('call');
    announce('The connection dropped. Reconnecting…');
  }
  const r = state.reconnect;
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
function endReconnect() {
  const r = state.reconnect;
  if (!r) {
    return;
  }
  clearTimeout(r.timer);
  clearTimeout(r.guard);
  state.reconnect = null;
  $('[data-reconnecting]').hidden = true;
}

// ---- Speaker, weak link and audio only ----------------------------------------

/** startStats reads the receive statistics every STATS_EVERY ms while in the call. */
function startStats() {
  stopStats();
  state.stats = { timer: setInterval(readStats, STATS_EVERY), busy: false, tick: 0, samples: [], weakShown: false };
}

/** stopStats stops reading statistics and clears the speaker highlight. */
function stopStats() {
  if (state.stats) {
    clearInterval(state.stats.timer);
    state.stats = null;
  }
  for (const el of $$('.tile-speaking')) {
    el.classList.remove('tile-speaking');
  }
}

/**
 * readStats highlights whoever is speaking (the audioLevel of their inbound
 * audio) and, about once a second, samples the link's loss, round-trip time
 * and upload estimate (linkquality.js) to notice a weak link.
 */
async function readStats() {
  const st = state.stats;
  const pc = state.session?.subscribe?.pc;
  if (!st || st.busy || !pc) {
    return;
  }
  st.busy = true;
  const link = st.tick++ % LINK_EVERY === 0;
  const pub = link ? state.session?.publish?.pc : null;
  let report = null;
  let up = null;
  try {
    [report, up] = await Promise.all([pc.getStats(), pub ? pub.getStats() : null]);
  } catch {
    report = null;
  }
  st.busy = false;
  if (!report || state.stats !== st) {
    return;
  }
  const owner = new Map(); // track id -> participant id
  for (const [id, stream] of state.streams) {
    for (const t of stream.getAudioTracks()) {
      owner.set(t.id, id);
    }
  }
  const speaking = new Set();
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      const who = owner.get(r.trackIdentifier);
      if (who && (r.audioLevel || 0) >= SPEAKING_LEVEL) {
        speaking.add(who);
      }
    }
  });
  for (const [id, tile] of state.tiles) {
    tile.el.classList.toggle('tile-speaking', speaking.has(id) && tile.p?.audio !== false);
  }
  layout.speaking(speaking);
  if (link) {
    watchLink(st, measure(Date.now(), report, up));
  }
}

/** watchLink suggests audio-only mode once when the link stayed weak over WEAK_WINDOW. */
function watchLink(st, sample) {
  st.samples.push(sample);
  while (sample.t - st.samples[0].t > WEAK_WINDOW + 2000) {
    st.samples.shift();
  }
  if (st.weakShown || state.audioOnly) {
    return;
  }
  const { weak, why, ...seen } = judge(st.samples);
  st.why = why;
  st.seen = seen;
  if (weak) {
    st.weakShown = true;
    $('[data-weak]').hidden = false;
    announce('Your connection looks weak. Audio only may help.');
  }
}

/** hideWeak hides the suggestion to switch to audio only. */
function hideWeak() {
  $('[data-weak]').hidden = true;
}

/**
 * toggleAudioOnly stops (or starts again) sending your video and showing the
 * others', to keep the conversation going on a weak link.
 */
function toggleAudioOnly() {
  state.audioOnly = !state.audioOnly;
  if (state.audioOnly) {
    state.videoBefore = state.video;
    state.video = false;
  } else {
    state.video = state.videoBefore;
  }
  applyLocalMedia();
  if (state.joined) {
    state.session.setMedia(state.audio, state.video);
    renderSelf();
  }
  hideWeak();
  renderAudioOnly();
  announce(state.audioOnly ? 'Audio only: you hear everyone, and video is off.' : 'Video is back on.');
}

/** renderAudioOnly hides or shows the others' video and sets the button. */
function renderAudioOnly() {
  document.body.classList.toggle('audio-only', state.audioOnly);
  for (const stream of state.streams.values()) {
    for (const t of stream.getVideoTracks()) {
      t.enabled = !state.audioOnly; // a disabled remote track is not rendered
    }
  }
  const b = $('[data-action="audio-only"][data-toggle]');
  b.textContent = state.audioOnly ? 'Show video' : 'Audio only';
  b.setAttribute('aria-pressed', String(state.audioOnly));
  b.classList.toggle('btn-on', state.audioOnly);
  scheduleLayers();
}

/** rejoin goes back to the device check. */
async function rejoin() {
  state.audio = true;
  state.video = true;
  state.audioOnly = false;
  const problem = await checkLink();
  if (problem) {
    showMessage(problem);
    return;
  }
  state.checkin = await telehealth.before(state.token, state.link);
  showPrejoin();
  loadMyWeek($('[data-my-week]'));
}

/** showPrejoin shows the device check and starts the preview. */
function showPrejoin() {
  setRoomName(state.sessionTitle || joiningRoom());
  $('[data-action="join"]').disabled = false;
  show('prejoin');
  state.preview = startPreview();
}

// ---- Connection check ---------------------------------------------------------

/** What the connection check says, in plain words, per outcome (connectivity.js). */
const connectivityWords = {
  checking: 'Checking whether video calls work on this network…',
  udp: 'Ready. Video calls work well on this network.',
  tcp: 'Ready. Your network blocks part of what video calls use, but a direct connection works. Video may lag a little.',
  relay: 'Connected through a relay; video may be slower.',
  blocked: 'Your network blocks video calls. Ask your program for the phone option, or try another network, such as your phone’s mobile data.',
  error: 'We could not check your connection. You can still try to join.',
};

/** checkConnection runs the connection check and shows its outcome beside the join button. */
async function checkConnection() {
  if (!apiReady() || state.checking) {
    return;
  }
  state.checking = true;
  const box = $('[data-connectivity]');
  const again = $('[data-action="check-connection"]');
  const show = (outcome) => {
    box.hidden = false;
    box.dataset.outcome = outcome;
    $('[data-connectivity-text]').textContent = connectivityWords[outcome];
  };
  again.hidden = true;
  show('checking');
  const result = await checkConnectivity(state.token);
  state.checking = false;
  box.dataset.paths = JSON.stringify(result.paths);
  show(result.outcome);
  again.hidden = result.outcome === 'udp';
}

// ---- Schedule, calendar and my week ------------------------------------------

/** apiReady reports whether the token is worth showing to the API: readable and not expired. */
function apiReady() {
  return !!state.token && !!state.claims && !expired(state.claims);
}

/** updateExtra shows the device check's schedule area only when something in it is shown. */
function updateExtra() {
  const area = $('[data-prejoin-extra]');
  area.hidden = [...area.children].every((el) => el.hidden);
}

/**
 * loadSchedule lists the person's next sessions (GET /v1/me/sessions) and,
 * for a client with sessions, their calendar address. Nothing is shown for
 * an ad-hoc room or a token without a program.
 */
async function loadSchedule() {
  if (!apiReady() || !state.claims.program) {
    return;
  }
  let sessions = [];
  try {
    const body = await getJSON(state.token, '/v1/me/sessions');
    sessions = Array.isArray(body.sessions) ? body.sessions : [];
  } catch {
    sessions = []; // the join itself will say what is wrong with the link
  }
  renderSessions(sessions);
  if (sessions.length > 0 && state.claims.role === 'client') {
    loadCalendar('GET');
  }
}

/** renderSessions shows the next sessions with their day, time and when they open, in the person's own zone. */
function renderSessions(sessions) {
  const items = sessions.filter((x) => validDate(x.start)).slice(0, NEXT_SESSIONS_SHOWN);
  const room = joiningRoom();
  const now = Date.now();
  $('[data-sessions-list]').replaceChildren(...items.map((x) => {
    const start = validDate(x.start);
    const end = validDate(x.end);
    const opens = validDate(x.join_opens);
    const closes = validDate(x.join_closes);
    const li = document.createElement('li');
    li.className = 'session';
    li.dataset.session = x.id;
    const title = document.createElement('span');
    title.className = 'session-title';
    title.textContent = sessionName(x);
    li.append(title);
    if (x.id === room) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = 'This link';
      li.append(' ', tag);
    }
    const when = document.createElement('span');
    when.className = 'session-when';
    when.textContent = `${capitalize(dayText(start))}, ${timeText(start)}${end ? ` – ${timeText(end)}` : ''}`;
    li.append(when);
    if (opens) {
      const open = opens <= now && (!closes || now < closes);
      const o = document.createElement('span');
      o.className = open ? 'session-opens is-open' : 'session-opens';
      o.textContent = open ? 'Open now' : `Opens at ${timeText(opens)}`;
      li.append(o);
    }
    return li;
  }));
  const zone = items[0]?.time_zone || '';
  const here = Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  const note = $('[data-sessions-zone]');
  note.textContent = zone && here && zone !== here ? `Times are in your time zone (${here.replace(/_/g, ' ')}).` : '';
  note.hidden = !note.textContent;
  $('[data-next-sessions]').hidden = items.length === 0;
  const mine = sessions.find((x) => x.id === room);
  if (mine) {
    state.sessionTitle = sessionName(mine); // the header names the session, not its room id
    if (!state.joined) {
      setRoomName(state.sessionTitle);
    }
  }
  updateExtra();
}

/** loadCalendar shows the secret address of the person's calendar feed; POST replaces it with a new one. */
async function loadCalendar(method) {
  const status = $('[data-copy-status]');
  try {
    const { url } = await getJSON(state.token, '/v1/me/calendar', { method });
    $('[data-calendar-url]').value = url || '';
    $('[data-calendar]').hidden = !url;
    if (method === 'POST') {
      status.textContent = 'This is your new address. The old one no longer works: add this one to your calendar app.';
    }
  } catch {
    if (method === 'POST') {
      status.textContent = 'A new address could not be made. Please try again later.';
    } else {
      $('[data-calendar]').hidden = true;
    }
  }
  updateExtra();
}

/** copyCalendar copies the calendar address, or selects it for the person to copy. */
async function copyCalendar() {
  const input = $('[data-calendar-url]');
  const status = $('[data-copy-status]');
  try {
    await navigator.clipboard.writeText(input.value);
    status.textContent = 'Copied. Now paste it into your calendar app.';
    return;
  } catch {
    // no clipboard permission: fall back to the selection
  }
  input.focus();
  input.select();
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  status.textContent = copied ? 'Copied. Now paste it into your calendar app.' : 'The address is selected: press Ctrl+C (or ⌘ C) to copy it.';
}

/**
 * loadMyWeek shows a client their own week against their targets in the
 * container (GET /v1/attendance/people/{sub}/weeks/{w}), when the server
 * answers; the week is the current one in the program's time zone.
 */
async function loadMyWeek(container) {
  const sub = state.claims?.sub;
  if (!apiReady() || state.claims.role !== 'client' || !sub) {
    return;
  }
  const path = (w) => `/v1/attendance/people/${seg(sub)}/weeks/${weekString(w)}`;
  let week = currentWeek(state.zone);
  let rep;
  try {
    rep = await getJSON(state.token, path(week));
    if (rep.zone && rep.zone !== state.zone) {
      state.zone = rep.zone;
      const here = currentWeek(state.zone);
      if (weekString(here) !== weekString(week)) {
        week = here;
        rep = await getJSON(state.token, path(week));
      }
    }
  } catch {
    container.hidden = true; // 403 for someone else's week, or no answer: show nothing
    updateExtra();
    return;
  }
  if (rep.role !== 'client') {
    container.hidden = true; // nothing recorded and not enrolled: no targets to show
    updateExtra();
    return;
  }
  const range = document.createElement('p');
  range.className = 'muted-text';
  range.textContent = `${weekRange(week)}${rep.live ? ' · counting your session now' : ''}`;
  const goals = document.createElement('div');
  goals.className = 'goals';
  goals.append(hoursGoal(rep), daysGoal(rep));
  const words = document.createElement('p');
  words.className = `week-words ${statusClass(rep.status)}`;
  words.textContent = clientStatusText(rep);
  words.hidden = !words.textContent;
  $('[data-my-week-body]', container).replaceChildren(range, goals, words);
  container.hidden = false;
  updateExtra();
}

// ---- Start --------------------------------------------------------------

/** onClick dispatches the page's buttons by their data-action. */
function onClick(e) {
  const b = e.target.closest('button[data-action]');
  if (!b || b.disabled) {
    return;
  }
  const id = b.dataset.participant;
  const actions = {
    join,
    leave,
    rejoin,
    'toggle-audio': () => toggle('audio'),
    'toggle-video': () => toggle('video'),
    hand: toggleHand,
    'dismiss-notice': hideNotice,
    'audio-only': toggleAudioOnly,
    'dismiss-weak': hideWeak,
    admit: () => state.session?.admit(id),
    deny: () => {
      state.denied.add(id);
      state.session?.deny(id);
    },
    'mute-audio': () => mute(b, 'audio'),
    'mute-video': () => mute(b, 'video'),
    remove: () => askRemove(id),
    'make-host': () => state.session?.host(id),
    lock: () => state.session?.lock(!state.locked),
    'auto-admit': () => state.session?.autoAdmit(!state.autoAdmit),
    end: askEnd,
    'copy-calendar': copyCalendar,
    'rotate-calendar': () => loadCalendar('POST'),
    'check-connection': checkConnection,
  };
  actions[b.dataset.action]?.();
}

/** onDialogCancel closes a dialog from its Cancel button. */
function onDialogCancel(e) {
  const b = e.target.closest('[data-dialog-cancel]');
  if (b) {
    b.closest('dialog').close('cancel');
  }
}

/** chat is the session's chat panel; it keeps nothing beyond the session. */
let chat;
/** breakouts shows the breakout rooms and, to therapists, their controls. */
let breakouts;

/** telehealth asks a client for the program's consent and the session's check-in. */
let telehealth;

/** layout lays the call out: the grid, a shared screen or a spotlight (screen.js). */
let layout;

async function main() {
  chat = new Chat($('[data-chat]'), $('[data-chat-toggle]'), {
    send: (text, priv) => state.session?.chat(text, priv),
    remove: (id) => state.session?.removeChat(id),
    enable: (on) => state.session?.enableChat(on),
    announce,
  });
  telehealth = new Telehealth({ consentView: $('[data-view="consent"]'), checkInView: $('[data-view="checkin"]'), show, announce });
  breakouts = new Breakouts({
    banner: $('[data-breakout-banner]'),
    console: $('[data-breakout-console]'),
    tiles: $('[data-tiles]'),
    session: () => state.session,
    people: () => [...state.tiles.values()].map((t) => t.p).filter(Boolean),
    relayout: layoutTiles,
    announce,
  });
  layout = new Stage({
    stage: $('[data-stage]'),
    featured: $('[data-featured]'),
    tiles: $('[data-tiles]'),
    share: $('[data-screen-share]'),
    allow: $('[data-screen-allow]'),
    stopOther: $('[data-screen-stop]'),
    tileMap: () => state.tiles,
    session: () => (state.joined ? state.session : null),
    you: () => state.you,
    relayout: layoutTiles,
    announce,
    notice: (text) => showNotice(text),
  });
  document.addEventListener('click', onClick);
  document.addEventListener('click', onDialogCancel);
  document.addEventListener('change', (e) => {
    if (e.target.matches('select[data-device]')) {
      chooseDevice(e.target);
    }
  });
  // Hooks for browser tests: the PeerConnections to read statistics from,
  // and a drop of the connection as a network failure would cause.
  window.__iop = {
    peerConnections: () => [state.session?.publish?.pc, state.session?.subscribe?.pc].filter(Boolean),
    dropConnection: () => state.session?.drop(),
    // The browser's own "Stop sharing": the capture's tracks end.
    endCapture: () => layout.capture?.getTracks().forEach((t) => { t.stop(); t.dispatchEvent(new Event('ended')); }),
    link: () => (state.stats ? { samples: state.stats.samples.length, weak: state.stats.weakShown, why: state.stats.why || '', seen: state.stats.seen } : null),
  };
  new ResizeObserver(layoutTiles).observe($('[data-stage]'));
  state.tileSizes = new ResizeObserver(scheduleLayers);
  state.tileSight = new IntersectionObserver(onTileSight, { root: $('[data-stage]') });
  document.addEventListener('visibilitychange', scheduleLayers);
  // Another join link opened on this page changes only the fragment: start over with it.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) {
      location.reload();
    }
  });
  // A reload keeps the place: in the call, the resume secret brings the
  // person back without the waiting room.
  window.addEventListener('pagehide', () => {
    state.unloading = true;
    if (state.joined) {
      keepPlace('call');
    } else if (state.waited && state.session) {
      keepPlace('waiting');
    }
  });
  state.token = readToken();
  if (!state.token) {
    show('no-token');
    return;
  }
  state.claims = decodeClaims(state.token);
  $('[data-who]').textContent = describeInvite(state.claims);
  // Refused before the camera turns on: the link check says why in its own words.
  const problem = state.autoJoin && state.resume ? null : await checkLink();
  if (problem) {
    setRoomName('');
    showMessage(problem);
    return;
  }
  state.checkin = await telehealth.before(state.token, state.link, { auto: state.autoJoin });
  showPrejoin();
  if (state.autoJoin) {
    state.autoJoin = false;
    join();
  }
  loadSchedule();
  loadMyWeek($('[data-my-week]'));
  checkConnection();
}

main();
