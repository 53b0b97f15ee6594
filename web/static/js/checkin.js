// checkin.js is what a client confirms before a telehealth session
// (docs/protocol.md, join; docs/api.md, consent): the program's telehealth
// consent, once per enrollment and again when its version changes, and the
// check-in of every session: where they are (for emergencies and
// licensure), whether that place is private, and a phone to call them back
// on if the video drops. The check-in travels in the join; this page keeps
// it for its own tab only (sessionStorage), so that a reload in the call
// does not ask again. Text is shown as text, never as HTML.

import { APIError, apiFetch, tabStore } from './api.js';

/** The US states, DC and territories a check-in may name: [code, name]. */
export const LOCATIONS = [
  ['AL', 'Alabama'], ['AK', 'Alaska'], ['AZ', 'Arizona'], ['AR', 'Arkansas'], ['CA', 'California'],
  ['CO', 'Colorado'], ['CT', 'Connecticut'], ['DE', 'Delaware'], ['DC', 'District of Columbia'],
  ['FL', 'Florida'], ['GA', 'Georgia'], ['HI', 'Hawaii'], ['ID', 'Idaho'], ['IL', 'Illinois'],
  ['IN', 'Indiana'], ['IA', 'Iowa'], ['KS', 'Kansas'], ['KY', 'Kentucky'], ['LA', 'Louisiana'],
  ['ME', 'Maine'], ['MD', 'Maryland'], ['MA', 'Massachusetts'], ['MI', 'Michigan'], ['MN', 'Minnesota'],
  ['MS', 'Mississippi'], ['MO', 'Missouri'], ['MT', 'Montana'], ['NE', 'Nebraska'], ['NV', 'Nevada'],
  ['NH', 'New Hampshire'], ['NJ', 'New Jersey'], ['NM', 'New Mexico'], ['NY', 'New York'],
  ['NC', 'North Carolina'], ['ND', 'North Dakota'], ['OH', 'Ohio'], ['OK', 'Oklahoma'], ['OR', 'Oregon'],
  ['PA', 'Pennsylvania'], ['RI', 'Rhode Island'], ['SC', 'South Carolina'], ['SD', 'South Dakota'],
  ['TN', 'Tennessee'], ['TX', 'Texas'], ['UT', 'Utah'], ['VT', 'Vermont'], ['VA', 'Virginia'],
  ['WA', 'Washington'], ['WV', 'West Virginia'], ['WI', 'Wisconsin'], ['WY', 'Wyoming'],
  ['AS', 'American Samoa'], ['GU', 'Guam'], ['MP', 'Northern Mariana Islands'], ['PR', 'Puerto Rico'],
  ['VI', 'U.S. Virgin Islands'],
];

/** The location of someone outside the listed states and territories. */
export const OTHER = 'other';

/** Bounds of the free text, as the server checks them. */
const MAX_OTHER = 80;
const MAX_PHONE = 32;

const locationNames = new Map(LOCATIONS);

/** phoneProblem says what is wrong with a callback number, or '' (the server checks it too). */
export function phoneProblem(phone) {
  const p = phone.trim();
  if (!p) {
    return 'Enter a phone number we can call you back on.';
  }
  const m = /^(\+?[0-9 ().-]+?)\s*(?:(?:ext\.?|x)\s*([0-9]+))?$/i.exec(p);
  const digits = m ? m[1].replace(/[^0-9]/g, '').length : 0;
  if (p.length > MAX_PHONE || !m || digits < 7 || digits > 15) {
    return 'Enter a phone number of 7 to 15 digits, for example 555 010 0199.';
  }
  return '';
}

/** checkInText says a check-in in one line, for the therapist's console. */
export function checkInText(ci) {
  if (!ci) {
    return '';
  }
  const where = ci.location === OTHER ? ci.other : locationNames.get(ci.location) || ci.location;
  return `In ${where} · ${ci.private ? 'private place' : 'NOT in a private place'} · callback ${ci.phone}`;
}

/** renderCheckIn shows a client's check-in (or nothing) in el, a row of the therapist's console. */
export function renderCheckIn(el, ci) {
  const text = checkInText(ci);
  const at = text.lastIndexOf('callback ');
  if (at < 0) {
    el.textContent = text;
  } else {
    // The number on one line: it is read out over the phone.
    const phone = document.createElement('span');
    phone.className = 'nowrap';
    phone.textContent = text.slice(at);
    el.replaceChildren(text.slice(0, at), phone);
  }
  el.hidden = !ci;
  el.classList.toggle('not-private', !!ci && !ci.private);
}

/** What the join's refusals about consent and check-in mean (join.js shows them; "retry" asks again). */
export const telehealthErrors = {
  consent_required: {
    title: 'Please read the telehealth consent first',
    text: 'Your program asks you to read and agree to its telehealth consent before you join. It may have been updated.',
    retry: true,
    retryLabel: 'Read the consent',
  },
  checkin_required: {
    title: 'Please check in first',
    text: 'Your program asks where you are and how to call you back before each session.',
    retry: true,
    retryLabel: 'Check in',
  },
  bad_checkin: {
    title: 'Your check-in could not be used',
    text: 'Something in it was not in the form we need. Please check in again.',
    retry: true,
    retryLabel: 'Check in again',
  },
};

/**
 * Telehealth asks a client, before the device check, for what their
 * program needs: the consent (the consent view) and the check-in (the
 * check-in view).
 */
export class Telehealth {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.consentView the consent view ([data-view="consent"])
   * @param {HTMLElement} opts.checkInView the check-in view ([data-view="checkin"])
   * @param {(view: string) => void} opts.show shows one view of the page
   * @param {(text: string) => void} opts.announce says something to screen readers
   */
  constructor({ consentView, checkInView, show, announce }) {
    this.consentView = consentView;
    this.checkInView = checkInView;
    this.showView = show;
    this.announce = announce;
    this.store = tabStore('checkin');
    const select = checkInView.querySelector('[data-checkin-location]');
    for (const [code, name] of LOCATIONS) {
      select.append(new Option(name, code));
    }
    select.append(new Option('Outside the United States', OTHER));
    select.addEventListener('change', () => this.renderOther());
  }

  /** kept returns the check-in this tab made with this link, or null. */
  kept(token) {
    const k = this.store.get();
    return k.link === linkTag(token) && k.checkin && typeof k.checkin === 'object' ? k.checkin : null;
  }

  /**
   * before asks for what the link check (GET /v1/link) says is owed:
   * consent, then check-in. It resolves with the check-in to send in the
   * join, or null when none is asked for. With auto (a reload or a move to
   * another server), a check-in this tab made already is used again.
   */
  async before(token, link, { auto = false } = {}) {
    if (link && link.consent) {
      await this.askConsent(token, link.consent);
    }
    const kept = this.kept(token);
    if (auto && kept) {
      return kept;
    }
    if (link && link.checkin) {
      return this.askCheckIn(token, kept);
    }
    return kept;
  }

  /** askConsent shows the consent text and resolves once it is acknowledged. */
  askConsent(token, { version, text }) {
    const v = this.consentView;
    const body = v.querySelector('[data-consent-text]');
    body.replaceChildren(...String(text).split(/\n\s*\n/).map((para) => {
      const p = document.createElement('p');
      p.textContent = para.trim();
      return p;
    }));
    v.querySelector('[data-consent-version]').textContent = `Version ${version}`;
    const agree = v.querySelector('[data-consent-agree]');
    const error = v.querySelector('[data-consent-error]');
    const form = v.querySelector('form');
    agree.checked = false;
    error.hidden = true;
    this.showView('consent');
    v.querySelector('h1').focus();
    return new Promise((resolve) => {
      form.onsubmit = async (e) => {
        e.preventDefault();
        if (!agree.checked) {
          showError(error, 'Please tick the box to say you have read the consent and agree to it.');
          agree.focus();
          return;
        }
        const button = form.querySelector('button[type="submit"]');
        button.disabled = true;
        try {
          await apiFetch(token, '/v1/me/consent', { method: 'POST', body: { version } });
          form.onsubmit = null;
          this.announce('Thank you. Your consent is recorded.');
          resolve();
        } catch (err) {
          showError(error, err instanceof APIError && err.code === 'bad_message'
            ? 'The consent was updated while this page was open. Please reload the page to read the new version.'
            : 'We could not record your consent. Please check your connection and try again.');
        } finally {
          button.disabled = false;
        }
      };
    });
  }

  /** askCheckIn shows the check-in form, filled with the last one of this tab, and resolves with the check-in. */
  askCheckIn(token, last) {
    const v = this.checkInView;
    const form = v.querySelector('form');
    const location = v.querySelector('[data-checkin-location]');
    const other = v.querySelector('[data-checkin-other]');
    const phone = v.querySelector('[data-checkin-phone]');
    const error = v.querySelector('[data-checkin-error]');
    location.value = last ? last.location : '';
    other.value = last && last.other ? last.other : '';
    phone.value = last ? last.phone : '';
    for (const r of v.querySelectorAll('[data-checkin-private]')) {
      r.checked = !!last && r.value === String(!!last.private);
    }
    error.hidden = true;
    this.renderOther();
    this.showView('checkin');
    v.querySelector('h1').focus();
    return new Promise((resolve) => {
      form.onsubmit = (e) => {
        e.preventDefault();
        const priv = v.querySelector('[data-checkin-private]:checked');
        const ci = { location: location.value, private: priv ? priv.value === 'true' : false, phone: phone.value.trim() };
        if (ci.location === OTHER) {
          ci.other = other.value.trim();
        }
        let problem = '';
        let field = null;
        if (!ci.location) {
          [problem, field] = ['Choose where you are right now.', location];
        } else if (ci.location === OTHER && (!ci.other || ci.other.length > MAX_OTHER)) {
          [problem, field] = [`Say where you are (city and country), in at most ${MAX_OTHER} characters.`, other];
        } else if (!priv) {
          [problem, field] = ['Say whether you are in a private place.', v.querySelector('[data-checkin-private]')];
        } else if (phoneProblem(ci.phone)) {
          [problem, field] = [phoneProblem(ci.phone), phone];
        }
        if (problem) {
          showError(error, problem);
          field.focus();
          return;
        }
        form.onsubmit = null;
        this.store.set({ link: linkTag(token), checkin: ci });
        this.announce('Thank you. You are checked in for this session.');
        resolve(ci);
      };
    });
  }

  /** renderOther shows the free-text place only for a location outside the list. */
  renderOther() {
    const other = this.checkInView.querySelector('[data-checkin-other-field]');
    other.hidden = this.checkInView.querySelector('[data-checkin-location]').value !== OTHER;
  }
}

/** linkTag tells this tab's link from another without keeping it twice: its signature's end. */
function linkTag(token) {
  return String(token).slice(-12);
}

function showError(el, text) {
  el.textContent = text;
  el.hidden = false;
}
