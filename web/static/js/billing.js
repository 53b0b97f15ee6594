// billing.js is the dashboard's billing export (docs/api.md, GET
// /v1/attendance/programs/{program}/billing.csv?from=&to=): one line per
// client per date of service, for this month, last month or dates the
// person chooses, on the program's calendar. The dashboard shows it to
// whoever the server lets read the program's attendance. The CSV is
// fetched with the bearer header and saved from a Blob, so the token never
// goes in a URL; a range the export cannot cover is explained before
// anything is asked of the server, and a refusal in the server's words.

import { APIError, apiFetch, seg } from './api.js';
import { saveFile } from './download.js';
import { capitalize, dateIn } from './format.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** maxDays is the longest range the export covers (a calendar quarter). */
export const maxDays = 92;

const DAY = 86400000;
const pad = (n) => String(n).padStart(2, '0');

/** dateString writes a calendar date {y, m, d} as yyyy-mm-dd. */
export const dateString = ({ y, m, d }) => `${y}-${pad(m)}-${pad(d)}`;

/** monthRange is the first and last date of the month `offset` months after date's. */
export function monthRange(date, offset = 0) {
  const first = new Date(Date.UTC(date.y, date.m - 1 + offset, 1));
  const last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0));
  const of = (t) => ({ y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() });
  return { from: dateString(of(first)), to: dateString(of(last)) };
}

/** parseDate reads yyyy-mm-dd as midnight UTC, or null for anything else (2026-11-31 included). */
function parseDate(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s || '');
  if (!m) {
    return null;
  }
  const t = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return t.getUTCDate() === Number(m[3]) && t.getUTCMonth() === Number(m[2]) - 1 ? t : null;
}

/** rangeProblem says what is wrong with a range of dates, or '' when the export covers it. */
export function rangeProblem(from, to) {
  const a = parseDate(from);
  const b = parseDate(to);
  if (!a || !b) {
    return 'Choose both dates, the first and the last.';
  }
  if (b < a) {
    return `The last date (${to}) comes before the first (${from}).`;
  }
  const days = Math.round((b - a) / DAY) + 1;
  if (days > maxDays) {
    return `That is ${days} days; one export covers at most ${maxDays} (a quarter). Choose a shorter range.`;
  }
  return '';
}

/** monthName names the month of a yyyy-mm-dd date: "November 2026". */
function monthName(s) {
  const t = parseDate(s);
  return t ? t.toLocaleDateString(undefined, { month: 'long', year: 'numeric', timeZone: 'UTC' }) : s;
}

/**
 * BillingExport drives the dashboard's billing form: root holds it,
 * token and program are the page's, zone() the program's time zone.
 */
export class BillingExport {
  constructor(root, { token, program, zone }) {
    this.root = root;
    this.token = token;
    this.program = program;
    this.zone = zone;
    this.form = $('[data-billing-form]', root);
    this.form.addEventListener('change', () => this.render());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.download();
    });
  }

  /** ranges are this month's and last month's dates on the program's calendar. */
  ranges() {
    const today = dateIn(new Date(), this.zone());
    return { this: monthRange(today, 0), last: monthRange(today, -1) };
  }

  /** render names the months and shows the date fields when dates are chosen. */
  render() {
    const r = this.ranges();
    $('[data-billing-label="this"]', this.root).textContent = `This month (${monthName(r.this.from)})`;
    $('[data-billing-label="last"]', this.root).textContent = `Last month (${monthName(r.last.from)})`;
    $('[data-billing-dates]', this.root).hidden = this.form.elements.period.value !== 'range';
  }

  /** chosen returns the dates of the chosen period. */
  chosen() {
    const period = this.form.elements.period.value;
    if (period === 'range') {
      return { from: this.form.elements.from.value, to: this.form.elements.to.value };
    }
    return this.ranges()[period] || this.ranges().this;
  }

  /** result shows what happened beside the button. */
  result(text, refused) {
    const p = $('[data-billing-result]', this.root);
    p.textContent = text;
    p.classList.toggle('is-refused', refused);
    p.setAttribute('role', refused ? 'alert' : 'status');
    p.hidden = false;
  }

  /** download fetches the chosen range's billing CSV and saves it. */
  async download() {
    const { from, to } = this.chosen();
    const problem = rangeProblem(from, to);
    if (problem) {
      this.result(`Not downloaded: ${problem}`, true);
      return;
    }
    const button = $('button[type="submit"]', this.form);
    button.disabled = true;
    this.result(`Preparing the billing CSV of ${from} to ${to}…`, false);
    try {
      const q = new URLSearchParams({ from, to });
      const res = await apiFetch(this.token, `/v1/attendance/programs/${seg(this.program)}/billing.csv?${q}`, { accept: 'text/csv' });
      const text = await res.text();
      const name = `billing-${this.program}-${from}-${to}.csv`;
      saveFile(text, name);
      // Lines of service begin with their date; the header and the chain head do not.
      const lines = text.split('\n').filter((l) => /^\d{4}-\d{2}-\d{2},/.test(l)).length;
      this.result(`Downloaded ${name}: ${lines === 1 ? '1 line' : `${lines} lines`} (one per client per date of service).`, false);
    } catch (err) {
      this.result(refusal(err), true);
    } finally {
      button.disabled = false;
    }
  }
}

/** refusal says why the export was not downloaded. */
function refusal(err) {
  if (!(err instanceof APIError)) {
    return 'Something went wrong in this page. Please try again.';
  }
  if (err.code === 'network') {
    return 'The server could not be reached. Please try again.';
  }
  if (err.status === 401) {
    return 'This link no longer works. Please open a new staff link.';
  }
  if (err.status === 403) {
    return 'Not downloaded: the billing export is for the program’s therapists and staff.';
  }
  if (err.status >= 500) {
    return 'The server failed. Please try again in a moment.';
  }
  return `Not downloaded: ${capitalize(err.message)}.`;
}
