// myschedule.js is the device check's extras: the connection check
// (connectivity.js), the person's next sessions and calendar address, and a
// client's week against their targets (docs/api.md, GET /v1/me/sessions,
// /v1/me/calendar, /v1/attendance/people/{sub}/weeks/{w}).

import { expired, getJSON, seg } from './api.js';
import { capitalize, currentWeek, dayText, sessionName, timeText, validDate, weekRange, weekString } from './format.js';
import { clientStatusText, daysGoal, hoursGoal, statusClass } from './attendance.js';
import { checkConnectivity } from './connectivity.js';
import { $, joiningRoom, state } from './joinstate.js';
import { connectivityWords } from './statustext.js';
import { setRoomName } from './views.js';

/** How many of the next sessions the device check lists. */
const NEXT_SESSIONS_SHOWN = 4;

/** The connection check runs. */
let checking = false;

/** checkConnection runs the connection check and shows its outcome beside the join button. */
export async function checkConnection() {
  if (!apiReady() || checking) {
    return;
  }
  checking = true;
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
  checking = false;
  box.dataset.paths = JSON.stringify(result.paths);
  show(result.outcome);
  again.hidden = result.outcome === 'udp';
}

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
export async function loadSchedule() {
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
export async function loadCalendar(method) {
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
export async function copyCalendar() {
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
export async function loadMyWeek(container) {
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
