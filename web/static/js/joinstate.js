// joinstate.js holds what the join page's modules share: the element
// lookups, the session-wide state (the token, the session, who you are,
// the tiles and streams of the call) and the page's parts. A module keeps
// to itself what only it uses: devices.js its chosen devices and meter,
// tiles.js its layer timer and observers, hostconsole.js its minutes timer,
// views.js the notice's kind, reconnect.js the rejoining, callstats.js the
// statistics loop, myschedule.js its connection check.

export const $ = (sel, root = document) => root.querySelector(sel);

export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** The page's session-wide state, shared by its modules; there is one session at a time. */
export const state = {
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
  tiles: new Map(), // participant id -> {el, video, p}
  streams: new Map(), // participant id -> the MediaStream received from them
  ending: null, // what the server said before closing: {title, text, next, quote, extra, retry}
  zone: '', // the program's time zone, once the server said it
  sessionTitle: '', // the title of the session this link is for, once the schedule said it
  audioOnly: false, // the person chose to send and see no video
  videoBefore: true, // the camera state before audio-only mode
  link: null, // what the link check said (GET /v1/link): status, and a client's consent and check-in owed
  checkin: null, // a client's check-in for this session, sent in the join
};

/** joiningRoom is the room this page joins: the token's, or the link's for a token valid in any room. */
export function joiningRoom() {
  const room = state.claims?.room;
  return room && room !== '*' ? room : state.room;
}

/**
 * The page's parts made once by join.js's main: chat is the session's chat
 * panel (chat.js); breakouts shows the breakout rooms and, to therapists,
 * their controls (breakout.js); telehealth asks a client for the program's
 * consent and the session's check-in (checkin.js); layout lays the call out:
 * the grid, a shared screen or a spotlight (screen.js).
 */
export const parts = { chat: null, breakouts: null, telehealth: null, layout: null };
