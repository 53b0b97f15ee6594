// hostconsole.js is the therapist's console: who waits, who is here with
// their state and the moderation buttons (mute, remove, make host), raised
// hands, the lock and automatic admission, following the server's host rule
// (docs/protocol.md); and the confirmations of removing and ending.

import { renderCheckIn } from './checkin.js';
import { $, $$, state } from './joinstate.js';
import { roleNames } from './statustext.js';
import { announce, ask } from './views.js';

/** How often the therapist's console refreshes the minutes present, in milliseconds. */
const MINUTES_REFRESH = 15000;

/** The console's refresh of the minutes present. */
let minutesTimer = 0;

/** isTherapist reports whether you lead this session (the server decides what you may do). */
export function isTherapist() {
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
export function renderConsole() {
  const on = isTherapist();
  // The aside, by its tag: the body carries data-has-console for the layout,
  // and a selector that could match the body once hid the whole page.
  $('aside[data-console]').hidden = !on;
  document.body.toggleAttribute('data-has-console', on);
  // A therapist has the floor already, and ends the session rather than leaving it.
  $('[data-action="hand"]').hidden = on;
  $('[data-view="call"] [data-action="end"]').hidden = !leads();
  $('[data-view="call"] [data-action="leave"]').classList.toggle('btn-leave', !on);
  clearInterval(minutesTimer);
  minutesTimer = 0;
  if (on) {
    minutesTimer = setInterval(renderPresent, MINUTES_REFRESH);
  }
  renderWaitingList();
  renderPresent();
  renderHands();
  renderLock();
}

/** renderWaitingList shows who waits, with Admit and Deny for each and Admit all. */
export function renderWaitingList() {
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
export function renderPresent() {
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
export function renderHands() {
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
export function renderLock() {
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
export function trackHand(p) {
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

/** askRemove asks the therapist for a short reason, then removes a participant. */
export async function askRemove(id) {
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
export async function askEnd() {
  if (await ask('end')) {
    state.session?.end();
  }
}

/** mute asks the server to mute a participant's microphone or camera. */
export function mute(b, kind) {
  if (b.getAttribute('aria-disabled') === 'true') {
    return;
  }
  state.session?.mute(b.dataset.participant, kind);
}
