// attendance.js draws a week of attendance against its targets (PROTOCOL.md,
// GET /v1/attendance/.../weeks/{yyyy-Www}): a horizontal bar per target
// whose empty, hatched part is the gap still to go, with the numbers in
// words beside it, so that nothing depends on colour or on seeing the bar.
// The staff dashboard and the client's "My week" both use it.

import { durationText, hoursText } from './api.js';

/** Staff words for a week's status. */
export const statusNames = {
  on_track: 'On track',
  at_risk: 'At risk',
  below: 'Below target',
};

/** What a client reads about their own week: kind, and never blaming. */
export const clientStatusText = {
  on_track: 'You are on track this week. Well done.',
  at_risk: 'This week is behind your goal so far. Every session you join still counts.',
  below: 'This week ended below your goal. Your team is there to help you plan the next one.',
};

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
