// format.js is the pages' calendar and words, with no fetching and no DOM:
// ISO weeks (docs/api.md names weeks like 2026-W48) and dates, times,
// durations and session names in words, in the person's own zone unless a
// zone is given.

// ---- ISO weeks ------------------------------------------------------------

const DAY = 86400000;

/**
 * dateIn returns the calendar date {y, m, d} of an instant in a time zone
 * (the browser's when timeZone is empty or unknown).
 */
export function dateIn(instant, timeZone = '') {
  let f;
  try {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timeZone || undefined, year: 'numeric', month: 'numeric', day: 'numeric' });
  } catch {
    f = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'numeric', day: 'numeric' });
  }
  const parts = Object.fromEntries(f.formatToParts(instant).map((p) => [p.type, p.value]));
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day) };
}

/** utcDate is midnight UTC of a calendar date, for date arithmetic. */
const utcDate = ({ y, m, d }) => new Date(Date.UTC(y, m - 1, d));

/** weekOfDate returns the ISO week {year, num} of a calendar date. */
export function weekOfDate(date) {
  const t = utcDate(date);
  const thursday = new Date(t.getTime() + (3 - ((t.getUTCDay() + 6) % 7)) * DAY);
  const year = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const firstThursday = jan4.getTime() + (3 - ((jan4.getUTCDay() + 6) % 7)) * DAY;
  return { year, num: 1 + Math.round((thursday.getTime() - firstThursday) / (7 * DAY)) };
}

/** currentWeek is the ISO week of now in a time zone. */
export function currentWeek(timeZone = '') {
  return weekOfDate(dateIn(new Date(), timeZone));
}

/** mondayOf returns the Monday of an ISO week, as midnight UTC. */
export function mondayOf({ year, num }) {
  const jan4 = new Date(Date.UTC(year, 0, 4));
  return new Date(jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * DAY + (num - 1) * 7 * DAY);
}

/** addWeeks returns the ISO week n weeks after w (before when n < 0). */
export function addWeeks(w, n) {
  const m = new Date(mondayOf(w).getTime() + n * 7 * DAY);
  return weekOfDate({ y: m.getUTCFullYear(), m: m.getUTCMonth() + 1, d: m.getUTCDate() });
}

/** weekString writes a week as the API does: 2026-W09. */
export function weekString({ year, num }) {
  return `${year}-W${String(num).padStart(2, '0')}`;
}

/** compareWeeks orders two weeks. */
export function compareWeeks(a, b) {
  return a.year - b.year || a.num - b.num;
}

/** weekRange says which days a week holds: "Mar 2 – 8, 2026". */
export function weekRange(w) {
  const from = mondayOf(w);
  const to = new Date(from.getTime() + 6 * DAY);
  const f = new Intl.DateTimeFormat(undefined, { timeZone: 'UTC', month: 'short', day: 'numeric', year: 'numeric' });
  return typeof f.formatRange === 'function' ? f.formatRange(from, to) : `${f.format(from)} – ${f.format(to)}`;
}

// ---- Dates and durations in words -------------------------------------------

/** validDate returns the Date of an RFC 3339 string, or null. */
export function validDate(s) {
  const d = s ? new Date(s) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
}

/** timeText is a time of day in the person's own zone: "9:00 AM". */
export function timeText(d) {
  return d.toLocaleTimeString(undefined, { hour: 'numeric', minute: '2-digit' });
}

/** daysFrom counts the calendar days (in the person's zone) from now to d. */
function daysFrom(d, now = new Date()) {
  const a = Date.UTC(now.getFullYear(), now.getMonth(), now.getDate());
  const b = Date.UTC(d.getFullYear(), d.getMonth(), d.getDate());
  return Math.round((b - a) / DAY);
}

/**
 * dayText names the day of d in the person's zone: "today", "tomorrow",
 * "Monday" within the week, "Monday, March 9" beyond.
 */
export function dayText(d, now = new Date()) {
  const days = daysFrom(d, now);
  if (days === 0) {
    return 'today';
  }
  if (days === 1) {
    return 'tomorrow';
  }
  if (days > 1 && days < 7) {
    return d.toLocaleDateString(undefined, { weekday: 'long' });
  }
  return d.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
}

/** whenText says when d is: "at 8:50 AM" today, else "tomorrow at 8:50 AM", "on Monday at 8:50 AM". */
export function whenText(d, now = new Date()) {
  const day = dayText(d, now);
  if (day === 'today') {
    return `at ${timeText(d)}`;
  }
  return day === 'tomorrow' ? `tomorrow at ${timeText(d)}` : `on ${day} at ${timeText(d)}`;
}

/** capitalize upper-cases the first letter. */
export const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** durationText says how long a number of seconds is: "2 h 5 min", "45 min", "under 1 min". */
export function durationText(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s === 0) {
    return '0 min';
  }
  if (s < 60) {
    return 'under 1 min';
  }
  const min = Math.floor(s / 60);
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (h === 0) {
    return `${m} min`;
  }
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** hoursText says a number of hours: "9 h", "7.5 h". */
export function hoursText(hours) {
  const h = Math.round((Number(hours) || 0) * 10) / 10;
  return `${h} h`;
}

/** minutesWords says a number of minutes in words: "10 minutes", "1 hour", "1 hour 30 minutes". */
export function minutesWords(min) {
  const h = Math.floor(min / 60);
  const m = min % 60;
  const parts = [];
  if (h) {
    parts.push(h === 1 ? '1 hour' : `${h} hours`);
  }
  if (m || !h) {
    parts.push(m === 1 ? '1 minute' : `${m} minutes`);
  }
  return parts.join(' ');
}

/** How the kinds of sessions are named to people. */
export const kindNames = {
  group: 'Group session',
  individual: 'Individual session',
  family: 'Family session',
  complementary: 'Complementary session',
  support: 'Support group',
};

/** sessionName is a session's title, or its kind in words. */
export function sessionName(s) {
  return (s && (s.title || kindNames[s.kind])) || 'Session';
}
