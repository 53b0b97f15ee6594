// amend.js holds the staff forms of a client's week that change the
// attendance record without editing it (docs/api.md): record why the
// client missed a scheduled session (PUT/DELETE
// /v1/programs/{program}/attendance/absences/{sub}/{room}) and correct the
// record with a reason, either new bounds for one of the client's segments
// (listed from GET /v1/attendance/rooms/{room}) or a presence the record
// lacks (POST /v1/programs/{program}/attendance/corrections). Times are
// entered on the program's clock. A refusal is shown as the server worded
// it, beside the form, and changes nothing.

import { APIError, apiFetch, getJSON, seg } from './api.js';
import { capitalize, sessionName, validDate } from './format.js';
import { absenceNames, localText } from './detail.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** zoneOffset is how far a time zone's clock is ahead of UTC at instant ms, in ms. */
function zoneOffset(ms, zone) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone || undefined, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute), Number(p.second)) - Math.floor(ms / 1000) * 1000;
}

/** fromClock reads a datetime-local value ("2026-11-02T09:00") on zone's clock as an instant, or null. */
export function fromClock(value, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value || '');
  if (!m) {
    return null;
  }
  const wall = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  let t = wall - zoneOffset(wall, zone);
  t = wall - zoneOffset(t, zone);
  return new Date(t);
}

/** toClock writes an RFC 3339 time as a datetime-local value on zone's clock. */
export function toClock(iso, zone) {
  const d = validDate(iso);
  return d ? new Date(d.getTime() + zoneOffset(d.getTime(), zone)).toISOString().slice(0, 16) : '';
}

/** clockText is a time of day on zone's clock: "9:00 AM". */
function clockText(d, zone) {
  try {
    return d.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit', timeZone: zone || undefined });
  } catch {
    return d.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
  }
}

/** refusalText says why a call was refused, and that nothing changed. */
function refusalText(err) {
  if (!(err instanceof APIError)) {
    return 'Something went wrong in this page. Nothing was recorded.';
  }
  if (err.code === 'network') {
    return 'The server could not be reached. Nothing was recorded; please try again.';
  }
  if (err.status === 401) {
    return 'This link no longer works. Nothing was recorded; please open a new staff link.';
  }
  if (err.status >= 500) {
    return 'The server failed. Nothing was recorded; please try again in a moment.';
  }
  return `Not recorded: ${capitalize(err.message)}. Nothing was changed.`;
}

/** option makes a select option. */
function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

/**
 * Amend drives the two forms in the detail dialog for one client at a time.
 * onChanged(sub) runs after the server recorded something, to reload the week.
 */
export class Amend {
  constructor(root, { token, program, onChanged }) {
    this.root = root;
    this.token = token;
    this.program = program;
    this.onChanged = onChanged;
    this.client = null;
    this.zone = '';
    this.absenceForm = $('[data-absence-form]', root);
    this.correctionForm = $('[data-correction-form]', root);
    this.absenceForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.recordAbsence();
    });
    this.correctionForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.recordCorrection();
    });
    $('[data-correction-room]', root).addEventListener('change', () => this.loadSegments());
    $('[data-correction-segment]', root).addEventListener('change', () => this.fillBounds());
  }

  /** show fills the forms for client c of a report in zone, keeping what was chosen when it is still there. */
  show(c, zone) {
    const same = this.client?.sub === c.sub;
    this.client = c;
    this.zone = zone;
    const scheduled = (c.scheduled || []).filter((s) => validDate(s.start));
    const absenceRoom = $('[data-absence-room]', this.root);
    const keep = same ? absenceRoom.value : '';
    absenceRoom.replaceChildren(...scheduled.map((s) => option(s.room, `${sessionName(s)}, ${localText(s.start, zone)}${s.absence ? ` (${absenceNames[s.absence] || s.absence})` : ''}`)));
    if (keep && scheduled.some((s) => s.room === keep)) {
      absenceRoom.value = keep;
    }
    $('[data-absence-none]', this.root).hidden = scheduled.length > 0;
    $('button[type="submit"]', this.absenceForm).disabled = scheduled.length === 0;

    // Corrections: the client's scheduled sessions and any session they were in.
    const rooms = new Map();
    for (const s of [...scheduled, ...(c.sessions || [])]) {
      if (!rooms.has(s.room)) {
        rooms.set(s.room, s);
      }
    }
    const correctionRoom = $('[data-correction-room]', this.root);
    const keepRoom = same ? correctionRoom.value : '';
    correctionRoom.replaceChildren(...[...rooms.values()].map((s) => option(s.room, `${sessionName(s)}, ${localText(s.start, zone)}`)));
    if (keepRoom && rooms.has(keepRoom)) {
      correctionRoom.value = keepRoom;
    }
    this.rooms = rooms;
    $('button[type="submit"]', this.correctionForm).disabled = rooms.size === 0;
    if (!same) {
      for (const r of this.root.querySelectorAll('[data-absence-result], [data-correction-result]')) {
        r.hidden = true;
      }
    }
    this.loadSegments();
  }

  /** result shows how a call went beside its form. */
  result(which, text, refused) {
    const p = $(`[data-${which}-result]`, this.root);
    p.textContent = text;
    p.classList.toggle('is-refused', refused);
    p.setAttribute('role', refused ? 'alert' : 'status');
    p.hidden = false;
    p.scrollIntoView({ block: 'nearest' });
  }

  /** recordAbsence puts (or, with no reason, clears) the reason for the chosen session. */
  async recordAbsence() {
    const c = this.client;
    const room = $('[data-absence-room]', this.root).value;
    const reason = $('[data-absence-reason]', this.root).value;
    if (!c || !room) {
      return;
    }
    const button = $('button[type="submit"]', this.absenceForm);
    button.disabled = true;
    const path = `/v1/programs/${seg(this.program)}/attendance/absences/${seg(c.sub)}/${seg(room)}`;
    try {
      await apiFetch(this.token, path, reason ? { method: 'PUT', body: { reason } } : { method: 'DELETE' });
      const s = (c.scheduled || []).find((x) => x.room === room);
      this.result('absence', reason ? `Recorded: ${absenceNames[reason]} for ${sessionName(s)}.` : `The reason for ${sessionName(s)} was cleared.`, false);
      this.onChanged(c.sub);
    } catch (err) {
      this.result('absence', refusalText(err), true);
    } finally {
      button.disabled = false;
    }
  }

  /** loadSegments lists the client's closed segments of the chosen session, from its roster. */
  async loadSegments() {
    const select = $('[data-correction-segment]', this.root);
    const room = $('[data-correction-room]', this.root).value;
    const sub = this.client?.sub;
    select.replaceChildren(option('', 'A presence the record lacks'));
    this.segments = new Map();
    this.fillBounds();
    if (!room || !sub) {
      return;
    }
    let roster;
    try {
      roster = await getJSON(this.token, `/v1/attendance/rooms/${seg(room)}`);
    } catch {
      return; // a new presence can still be recorded
    }
    if (room !== $('[data-correction-room]', this.root).value || sub !== this.client?.sub) {
      return; // a later choice won
    }
    const person = (roster.people || []).find((p) => p.sub === sub);
    for (const s of person?.segments || []) {
      const from = validDate(s.start);
      const to = validDate(s.end);
      if (!from || !to) {
        continue; // an open segment cannot be corrected
      }
      this.segments.set(s.id, s);
      select.append(option(s.id, `Their time ${clockText(from, this.zone)} – ${clockText(to, this.zone)}${s.reason ? ` (${s.reason})` : ''}`));
    }
  }

  /** fillBounds puts the chosen segment's bounds, or the session's, in the time fields. */
  fillBounds() {
    const f = this.correctionForm;
    const id = $('[data-correction-segment]', this.root).value;
    const s = id ? this.segments?.get(id) : this.rooms?.get($('[data-correction-room]', this.root).value);
    f.elements.start.value = s ? toClock(s.start, this.zone) : '';
    f.elements.end.value = s ? toClock(s.end, this.zone) : '';
    $('[data-correction-new]', this.root).hidden = Boolean(id);
  }

  /** recordCorrection posts the correction in the form. */
  async recordCorrection() {
    const c = this.client;
    const f = this.correctionForm;
    const room = f.elements.room.value;
    if (!c || !room) {
      return;
    }
    const start = fromClock(f.elements.start.value, this.zone);
    const end = fromClock(f.elements.end.value, this.zone);
    if (!start || !end) {
      this.result('correction', 'Not recorded: give both times, from and to. Nothing was changed.', true);
      return;
    }
    const body = { start: start.toISOString(), end: end.toISOString(), reason: f.elements.reason.value.trim() };
    const segment = f.elements.segment.value;
    if (segment) {
      body.segment = segment;
    } else {
      const s = this.rooms.get(room);
      Object.assign(body, {
        room, kind: s?.kind || 'group', sub: c.sub, role: 'client', video: f.elements.video.checked,
      });
    }
    const button = $('button[type="submit"]', f);
    button.disabled = true;
    try {
      await apiFetch(this.token, `/v1/programs/${seg(this.program)}/attendance/corrections`, { method: 'POST', body });
      this.result('correction', `Recorded: ${sessionName(this.rooms.get(room))}, ${clockText(start, this.zone)} – ${clockText(end, this.zone)}.`, false);
      f.elements.reason.value = '';
      this.onChanged(c.sub);
    } catch (err) {
      this.result('correction', refusalText(err), true);
    } finally {
      button.disabled = false;
    }
  }
}
