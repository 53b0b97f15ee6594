// detail.js is the staff dashboard's dialog of one client's week: their
// targets, sessions attended, days, each scheduled session as the program's
// policy judged it (attended, missed, the absence reason staff recorded)
// and absence flags, from a person of the program week report (docs/api.md,
// GET /v1/attendance/programs/{program}/weeks/{yyyy-Www}). The forms that
// record an absence or a correction are in amend.js.

import { capitalize, durationText, sessionName, validDate, weekRange, weekString } from './format.js';
import { daysGoal, flagText, hoursGoal, statusClass, statusName } from './attendance.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** displayName is how a person is named on the dashboard. */
export const displayName = (p) => p.name || p.sub;

/** How the absence reasons staff record are named (docs/api.md, "absences"). */
export const absenceNames = {
  excused: 'Excused',
  no_show: 'No-show',
  cancelled: 'Cancelled by the program',
};

/** localText shows an RFC 3339 time in the program's zone: "Mon, Mar 2, 9:00 AM". */
export function localText(iso, zone) {
  const d = validDate(iso);
  if (!d) {
    return '';
  }
  const opts = { weekday: 'short', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' };
  try {
    return d.toLocaleString(undefined, { ...opts, timeZone: zone || undefined });
  } catch {
    return d.toLocaleString(undefined, opts);
  }
}

/** dateText shows a local date (2026-03-02) as "Monday, March 2". */
function dateText(date) {
  const d = validDate(`${date}T12:00:00Z`);
  return d ? d.toLocaleDateString(undefined, { timeZone: 'UTC', weekday: 'long', month: 'long', day: 'numeric' }) : date;
}

/** scheduledText says how a scheduled session went, in words. */
export function scheduledText(s) {
  if (s.absence === 'cancelled') {
    return absenceNames.cancelled;
  }
  const parts = [];
  if (s.attended) {
    parts.push('Attended');
    if (s.late) {
      parts.push('late');
    }
    if (s.left_early) {
      parts.push('left early');
    }
  } else if (!s.over) {
    parts.push('Still to come');
  } else {
    parts.push('Missed');
  }
  if (s.absence) {
    parts.push(absenceNames[s.absence] || s.absence);
  }
  return parts.join(' · ');
}

/**
 * fillDetail writes client c's week into the dialog; view is {week, zone}
 * of the report shown.
 */
export function fillDetail(dialog, c, { week, zone }) {
  dialog.dataset.person = c.sub;
  $('[data-detail-name]', dialog).textContent = displayName(c);
  $('[data-detail-week]', dialog).textContent = `${weekRange(week)} (${weekString(week)})`;
  const status = $('[data-detail-status]', dialog);
  status.textContent = c.status ? `Status: ${statusName(c)}${c.live ? ' · in a session now' : ''}` : '';
  status.className = `detail-status ${statusClass(c.status)}`;
  $('[data-detail-goals]', dialog).replaceChildren(hoursGoal(c), daysGoal(c));

  const sessions = c.sessions || [];
  $('[data-detail-sessions]', dialog).replaceChildren(...sessions.map((s) => {
    const tr = document.createElement('tr');
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = s.title || sessionName(s);
    if (s.title && s.kind) {
      const k = document.createElement('span');
      k.className = 'muted-text small block';
      k.textContent = capitalize(s.kind);
      name.append(k);
    }
    const when = document.createElement('td');
    when.textContent = `${localText(s.start, zone)}${s.end ? '' : ' (still in session)'}`;
    const min = document.createElement('td');
    min.textContent = durationText(s.seconds);
    const video = document.createElement('td');
    video.textContent = durationText(s.video_seconds);
    tr.append(name, when, min, video);
    tr.dataset.room = s.room;
    return tr;
  }));
  $('[data-detail-sessions-table]', dialog).hidden = sessions.length === 0;
  $('[data-detail-no-sessions]', dialog).hidden = sessions.length > 0;

  const days = c.daily || [];
  $('[data-detail-days-section]', dialog).hidden = days.length === 0;
  $('[data-detail-days]', dialog).replaceChildren(...days.map((d) => {
    const li = document.createElement('li');
    li.textContent = `${dateText(d.date_local)}: ${durationText(d.seconds)}, ${d.sessions === 1 ? '1 session' : `${d.sessions} sessions`}${d.billable ? ' · billable day' : ''}`;
    return li;
  }));

  const scheduled = c.scheduled || [];
  $('[data-detail-scheduled-section]', dialog).hidden = scheduled.length === 0;
  $('[data-detail-scheduled]', dialog).replaceChildren(...scheduled.map((s) => {
    const li = document.createElement('li');
    li.dataset.room = s.room;
    if (s.absence) {
      li.dataset.absence = s.absence;
    }
    const what = document.createElement('span');
    what.textContent = `${sessionName(s)}, ${localText(s.start, zone)}: `;
    const how = document.createElement('strong');
    how.dataset.scheduledStatus = '';
    how.textContent = scheduledText(s);
    li.append(what, how);
    return li;
  }));

  const missed = c.missed || [];
  $('[data-detail-missed-section]', dialog).hidden = missed.length === 0;
  $('[data-detail-missed]', dialog).replaceChildren(...missed.map((m) => {
    const li = document.createElement('li');
    li.textContent = `${sessionName(m)}, ${localText(m.start, zone)}`;
    return li;
  }));

  const flags = c.flags || [];
  $('[data-detail-flags-section]', dialog).hidden = flags.length === 0;
  $('[data-detail-flags]', dialog).replaceChildren(...flags.map((f) => {
    const li = document.createElement('li');
    li.className = 'flag';
    li.textContent = flagText(f);
    return li;
  }));
}

/** openDetail shows the dialog, focus going back to the opener (or the client's button) when it closes. */
export function openDetail(dialog, sub) {
  const opener = document.activeElement;
  dialog.addEventListener('close', () => {
    if (opener && opener.isConnected) {
      opener.focus();
    } else {
      $(`[data-action="detail"][data-person="${CSS.escape(sub)}"]`)?.focus();
    }
  }, { once: true });
  dialog.showModal();
}
