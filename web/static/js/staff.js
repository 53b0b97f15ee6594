// staff.js is the attendance dashboard (/staff#token=<JWT>) for a program's
// staff and therapists: this ISO week's hours and days per client against
// their targets, as bars that show the gap at a glance, with status and
// absence flags and the absence reasons staff recorded; a week picker; a
// client's week in detail (detail.js), where staff record an absence or a
// correction (amend.js); the week's CSV export; and the billing export of
// a month or chosen dates (billing.js). The token comes from the URL
// fragment and goes only in the Authorization header, the CSVs included
// (fetched, then saved from a Blob).

import { APIError, apiFetch, decodeClaims, expired, getJSON, readFragment, seg, tabStore } from './api.js';
import { addWeeks, compareWeeks, currentWeek, durationText, sessionName, weekRange, weekString } from './format.js';
import { daysGoal, flagText, hoursGoal, statusClass, statusName, statusNames } from './attendance.js';
import { absenceNames, displayName, fillDetail, localText, openDetail } from './detail.js';
import { Amend } from './amend.js';
import { BillingExport } from './billing.js';
import { saveFile } from './download.js';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** Worst first, so that the clients who need a look come first. */
const statusOrder = { below: 0, at_risk: 1, on_track: 2 };

/** How roles are named on the dashboard. */
const roleNames = { therapist: 'Therapist', staff: 'Staff', family: 'Family', client: 'Client' };

const state = {
  token: '',
  claims: null,
  program: '',
  zone: '', // the program's time zone, once the server said it
  week: null, // {year, num} shown
  report: null, // the ProgramWeekReport shown
  loading: 0, // the number of the latest load, so that late answers are dropped
  amend: null, // the Amend of the detail dialog
  billing: null, // the BillingExport of the dashboard
};

/** show makes one view visible and hides the others. */
function show(view) {
  for (const el of $$('[data-view]')) {
    el.hidden = el.dataset.view !== view;
  }
}

/** announce puts a short message in the polite live region. */
function announce(text) {
  $('[data-status]').textContent = text;
}

/** showError ends on a message about the token or the server. */
function showError(err) {
  let title = 'The attendance could not be loaded';
  let text = 'The server did not answer as expected. Please try again in a moment.';
  let retry = true;
  if (err instanceof APIError && err.status === 401) {
    title = 'This link does not work';
    text = 'It may have expired, or part of it may be missing. Please ask for a new attendance link.';
    retry = false;
  } else if (err instanceof APIError && err.status === 403) {
    title = 'This link is not for this program’s attendance';
    text = 'Attendance is for the staff and therapists of the program. Please ask for a staff link.';
    retry = false;
  } else if (err instanceof APIError && err.code === 'network') {
    text = 'The server could not be reached. Check your internet connection, then try again.';
  }
  $('[data-error-title]').textContent = title;
  $('[data-error-text]').textContent = text;
  $('[data-action="reload"]').hidden = !retry;
  show('error');
  announce('');
  $('[data-error-title]').focus();
}

// ---- Loading ----------------------------------------------------------

/** weekPath is the API path of the program's week. */
function weekPath(week, csv = false) {
  return `/v1/attendance/programs/${seg(state.program)}/weeks/${weekString(week)}${csv ? '.csv' : ''}`;
}

/**
 * load fetches a week and shows it. Without a week it loads this week in
 * the program's time zone, which the first answer tells.
 */
async function load(week, { focus = false } = {}) {
  const n = ++state.loading;
  const current = !week;
  week = week || currentWeek(state.zone);
  announce('Loading…');
  let report;
  try {
    report = await getJSON(state.token, weekPath(week));
    if (current && report.zone && report.zone !== state.zone) {
      // "This week" is the program's, which may differ from this device's near midnight.
      state.zone = report.zone;
      const here = currentWeek(state.zone);
      if (compareWeeks(here, week) !== 0) {
        week = here;
        report = await getJSON(state.token, weekPath(week));
      }
    }
  } catch (err) {
    if (n === state.loading) {
      state.report ? announce('The week could not be loaded. Please try again.') : showError(err);
    }
    return;
  }
  if (n !== state.loading) {
    return; // a later choice won
  }
  state.zone = report.zone || state.zone;
  state.week = week;
  state.report = report;
  render();
  state.billing.render();
  refreshDetail();
  show('dashboard');
  announce(`Showing ${weekRange(week)}.`);
  if (focus) {
    $('#dash-title').focus();
  }
}

// ---- Rendering --------------------------------------------------------

/** clientsOf returns the clients of a report, those who need a look first. */
function clientsOf(report) {
  const clients = report.people.filter((p) => p.role === 'client' || !p.role);
  return clients.sort((a, b) => (statusOrder[a.status] ?? 3) - (statusOrder[b.status] ?? 3)
    || (a.name || a.sub).localeCompare(b.name || b.sub));
}

/** render shows the loaded week. */
function render() {
  const { report, week } = state;
  const thisWeek = currentWeek(state.zone);
  const isCurrent = compareWeeks(week, thisWeek) === 0;
  $('[data-week-label]').textContent = isCurrent ? `this week (${weekString(week)})` : `week ${weekString(week)}`;
  $('[data-week-range]').textContent = `${weekRange(week)}${report.zone ? ` · times in ${report.zone}` : ''}`;
  // aria-disabled rather than disabled, so that focus stays on the button.
  $('[data-action="next-week"]').setAttribute('aria-disabled', String(compareWeeks(week, thisWeek) >= 0));
  $('[data-action="this-week"]').setAttribute('aria-disabled', String(isCurrent));
  $('[data-caption]').textContent = `Clients’ hours and days against their targets, ${weekRange(week)}`;
  document.title = `Attendance ${weekString(week)}`;

  const clients = clientsOf(report);
  renderRows(clients);
  $('[data-empty]').hidden = clients.length > 0;
  $('[data-table-wrap]').hidden = clients.length === 0;

  const counts = { on_track: 0, at_risk: 0, below: 0 };
  for (const c of clients) {
    if (c.status in counts) {
      counts[c.status]++;
    }
  }
  const flagged = clients.filter((c) => (c.flags || []).length > 0).length;
  const parts = [`${clients.length} ${clients.length === 1 ? 'client' : 'clients'}`];
  for (const [s, k] of Object.entries(counts)) {
    if (k) {
      parts.push(`${k} ${statusNames[s].toLowerCase()}`);
    }
  }
  if (flagged) {
    parts.push(`${flagged} with absence flags`);
  }
  $('[data-summary]').textContent = parts.join(' · ');

  const others = report.people.filter((p) => p.role && p.role !== 'client');
  $('[data-others-section]').hidden = others.length === 0;
  $('[data-others]').replaceChildren(...others.map((p) => {
    const li = document.createElement('li');
    li.textContent = `${displayName(p)} (${roleNames[p.role] || p.role}): ${durationText(p.seconds)}, ${p.days === 1 ? '1 day' : `${p.days || 0} days`}`;
    return li;
  }));
}

/** renderRows fills the table, one row per client, keeping the focused row's button. */
function renderRows(clients) {
  const body = $('[data-rows]');
  const focused = document.activeElement?.closest?.('[data-person]')?.dataset.person;
  body.replaceChildren(...clients.map((c) => {
    const tr = $('#row-template').content.firstElementChild.cloneNode(true);
    tr.dataset.person = c.sub;
    const b = $('[data-action="detail"]', tr);
    b.textContent = displayName(c);
    b.dataset.person = c.sub;
    b.setAttribute('aria-haspopup', 'dialog');
    b.setAttribute('aria-label', `${displayName(c)}: the week in detail`);
    $('[data-hours]', tr).append(hoursGoal(c, { showLabel: false }));
    $('[data-days]', tr).append(daysGoal(c, { showLabel: false }));
    const badge = $('[data-status-badge]', tr);
    badge.textContent = statusName(c) || '—';
    badge.classList.add(statusClass(c.status));
    $('[data-absences]', tr).append(absencesCell(c));
    return tr;
  }));
  if (focused) {
    $(`[data-action="detail"][data-person="${CSS.escape(focused)}"]`)?.focus();
  }
}

/** absencesCell says how many sessions were missed and which flags are up. */
function absencesCell(c) {
  const frag = document.createDocumentFragment();
  const missed = document.createElement('span');
  missed.className = 'missed';
  missed.textContent = c.absences ? `${c.absences} missed` : 'None missed';
  frag.append(missed);
  const reasons = (c.scheduled || []).filter((s) => s.absence);
  if (reasons.length) {
    const ul = document.createElement('ul');
    ul.className = 'absence-reasons';
    for (const s of reasons) {
      const li = document.createElement('li');
      li.dataset.absence = s.absence;
      li.textContent = `${absenceNames[s.absence] || s.absence}: ${sessionName(s)}, ${localText(s.start, state.zone)}`;
      ul.append(li);
    }
    frag.append(ul);
  }
  if ((c.flags || []).length) {
    const ul = document.createElement('ul');
    ul.className = 'flags';
    for (const f of c.flags) {
      const li = document.createElement('li');
      li.className = 'flag';
      li.textContent = flagText(f);
      ul.append(li);
    }
    frag.append(ul);
  }
  return frag;
}

// ---- A client's week in detail ------------------------------------------

/** showDetail opens one client's week in the dialog. */
function showDetail(sub) {
  const c = state.report?.people.find((p) => p.sub === sub);
  if (!c) {
    return;
  }
  const dialog = $('dialog[data-dialog="detail"]');
  fillDetail(dialog, c, state);
  state.amend.show(c, state.zone);
  openDetail(dialog, sub);
}

/** refreshDetail writes a newly loaded week into the open dialog. */
function refreshDetail() {
  const dialog = $('dialog[data-dialog="detail"]');
  const c = dialog.open && state.report.people.find((p) => p.sub === dialog.dataset.person);
  if (c) {
    fillDetail(dialog, c, state);
    state.amend.show(c, state.zone);
  }
}

// ---- CSV ----------------------------------------------------------------

/**
 * downloadCSV fetches the week's CSV with the bearer header and saves it
 * from a Blob URL, so that the token never goes in a URL.
 */
async function downloadCSV(button) {
  button.disabled = true;
  announce('Preparing the CSV…');
  try {
    const res = await apiFetch(state.token, weekPath(state.week, true), { accept: 'text/csv' });
    saveFile(await res.text(), `attendance-${state.program}-${weekString(state.week)}.csv`);
    announce(`The CSV of ${weekString(state.week)} was downloaded.`);
  } catch {
    announce('The CSV could not be downloaded. Please try again.');
  } finally {
    button.disabled = false;
  }
}

// ---- Start ----------------------------------------------------------------

/** onClick dispatches the page's buttons by their data-action. */
function onClick(e) {
  const b = e.target.closest('button[data-action]');
  if (!b || b.disabled || b.getAttribute('aria-disabled') === 'true') {
    return;
  }
  const actions = {
    'prev-week': () => load(addWeeks(state.week, -1)),
    'next-week': () => load(addWeeks(state.week, 1)),
    'this-week': () => load(null),
    refresh: () => load(state.week),
    reload: () => load(state.week, { focus: true }),
    'download-csv': () => downloadCSV(b),
    detail: () => showDetail(b.dataset.person),
  };
  actions[b.dataset.action]?.();
}

function main() {
  document.addEventListener('click', onClick);
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) {
      location.reload();
    }
  });
  // The link is kept for this tab, so that a reload stays on the dashboard.
  const kept = tabStore('staff');
  let params = readFragment();
  if (params.get('token')) {
    kept.set({ fragment: params.toString() });
  } else {
    params = new URLSearchParams(kept.get().fragment || '');
  }
  state.token = (params.get('token') || '').trim();
  if (!state.token) {
    show('no-token');
    return;
  }
  state.claims = decodeClaims(state.token);
  if (!state.claims || expired(state.claims)) {
    showError(new APIError(401, 'unauthorized', ''));
    return;
  }
  state.program = params.get('program') || state.claims.program || 'default';
  state.amend = new Amend($('dialog[data-dialog="detail"]'), {
    token: state.token, program: state.program, onChanged: () => load(state.week),
  });
  state.billing = new BillingExport($('[data-billing]'), { token: state.token, program: state.program, zone: () => state.zone });
  const p = $('[data-program]');
  p.textContent = `Program: ${state.program}`;
  p.hidden = false;
  const w = /^(\d{4})-W(\d{2})$/.exec(params.get('week') || '');
  load(w ? { year: Number(w[1]), num: Number(w[2]) } : null);
}

main();
