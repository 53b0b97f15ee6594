// attendance.js draws a week of attendance against its targets (docs/api.md,
// GET /v1/attendance/.../weeks/{yyyy-Www}): a horizontal bar per target
// whose empty, hatched part is the gap still to go, with the numbers in
// words beside it, so that nothing depends on colour or on seeing the bar.
// The staff dashboard and the client's "My week" both use it.

import { durationText, hoursText } from './format.js';

/**
 * Staff words for a week's status. "on_track" means the targets can still
 * be met this week, not that anything was achieved: a week whose targets
 * are met is named by statusName.
 */
export const statusNames = {
  on_track: 'Can still meet target',
  at_risk: 'At risk',
  below: 'Below target',
};

/** targetsMet reports whether a week reached both its targets. */
export function targetsMet(week) {
  const hours = Number(week.target_hours) || 0;
  const days = Number(week.target_days) || 0;
  return hours > 0 && (Number(week.seconds) || 0) >= hours * 3600 && (Number(week.days) || 0) >= days;
}

/** statusName is the staff word for one week: "Target met" once it is. */
export function statusName(week) {
  if (targetsMet(week)) {
    return 'Target met';
  }
  return statusNames[week.status] || '';
}

/**
 * clientStatusText is what a client reads about their own week: what they
 * attended against what was scheduled so far and the goal, in plain words,
 * kind and never blaming. Praise is for a goal reached, never for a start.
 */
export function clientStatusText(week) {
  if (!statusNames[week.status]) {
    return '';
  }
  if (targetsMet(week)) {
    return 'You reached your goal this week. Well done.';
  }
  if (week.status === 'below') {
    return 'This week ended below your goal. Your team is there to help you plan the next one.';
  }
  const attended = Number(week.sessions_attended) || 0;
  const missed = Number(week.absences) || 0;
  const s = (k) => (k === 1 ? '1 session' : `${k} sessions`);
  let text = '';
  if (missed > 0) {
    text = `So far this week you joined ${attended} of the ${s(attended + missed)} scheduled. `;
  } else if (attended > 0) {
    text = `So far this week you joined ${s(attended)}. `;
  }
  if (week.status === 'at_risk') {
    return `${text}This week is behind your goal. Every session you join still counts.`;
  }
  return `${text}There is still time to reach your goal; the bars above show what is left.`;
}

/** statusClass is the class that colours a status (always next to its words). */
export const statusClass = (status) => `is-${statusNames[status] ? status : 'none'}`;

/**
 * goalBar returns a bar of value against target with its words:
 * label, e.g. "Hours"; text, e.g. "4 h 30 min of 9 h"; gap, e.g. "4 h 30 min
 * to go" (empty when the target is met or unknown); ratio from 0 up.
 */
export function goalBar({ label, text, gap, ratio, status, showLabel = true }) {
  const el = document.createElement('div');
  el.className = `goal ${statusClass(status)}`;
  if (showLabel) {
    const l = document.createElement('span');
    l.className = 'goal-label';
    l.textContent = label;
    el.append(l);
  }
  const track = document.createElement('div');
  track.className = 'goal-track';
  track.setAttribute('aria-hidden', 'true');
  const fill = document.createElement('div');
  fill.className = 'goal-fill';
  // CSSOM, not a style attribute: the page's CSP allows no inline styles.
  fill.style.width = `${Math.round(Math.min(1, Math.max(0, ratio)) * 1000) / 10}%`;
  track.append(fill);
  const words = document.createElement('span');
  words.className = 'goal-text';
  words.textContent = text;
  if (gap) {
    const g = document.createElement('span');
    g.className = 'goal-gap';
    g.textContent = gap;
    words.append(' ', g);
  }
  el.append(track, words);
  return el;
}

/** hoursGoal is the bar of a week's hours against the target hours. */
export function hoursGoal(week, opts = {}) {
  const seconds = Number(week.seconds) || 0;
  const target = Number(week.target_hours) || 0;
  if (!target) {
    return goalBar({ label: 'Hours', text: durationText(seconds), gap: '', ratio: seconds > 0 ? 1 : 0, status: '', ...opts });
  }
  const left = target * 3600 - seconds;
  const ended = week.status === 'below';
  return goalBar({
    label: 'Hours',
    text: `${durationText(seconds)} of ${hoursText(target)}`,
    // The gap in whole minutes, rounded up: 8 h 59 min 58 s to go is 9 h.
    gap: left > 0 ? `(${durationText(Math.ceil(left / 60) * 60)} ${ended ? 'short' : 'to go'})` : '(target met)',
    ratio: seconds / (target * 3600),
    status: week.status,
    ...opts,
  });
}

/** daysGoal is the bar of a week's days against the target days. */
export function daysGoal(week, opts = {}) {
  const days = Number(week.days) || 0;
  const target = Number(week.target_days) || 0;
  const n = (k) => (k === 1 ? '1 day' : `${k} days`);
  if (!target) {
    return goalBar({ label: 'Days', text: n(days), gap: '', ratio: days > 0 ? 1 : 0, status: '', ...opts });
  }
  const left = target - days;
  const ended = week.status === 'below';
  return goalBar({
    label: 'Days',
    text: `${days} of ${n(target)}`,
    gap: left > 0 ? `(${n(left)} ${ended ? 'short' : 'to go'})` : '(target met)',
    ratio: days / target,
    status: week.status,
    ...opts,
  });
}

/** flagText says what an absence flag means. */
export function flagText(f) {
  switch (f.rule) {
    case 'consecutive':
      return `Missed the last ${f.count} sessions in a row`;
    case 'frequent':
      return `${f.count} sessions missed in recent weeks`;
    default:
      return `${f.count} sessions missed`;
  }
}
