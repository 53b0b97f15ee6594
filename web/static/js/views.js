// views.js switches the join page's views (device check, waiting room,
// call, message) and speaks to the person: the polite live region, the
// closing message, the notice above the video and the confirmation
// dialogs.

import { $, $$ } from './joinstate.js';

/** show makes one view visible and hides the others. */
export function show(view) {
  for (const el of $$('[data-view]')) {
    el.hidden = el.dataset.view !== view;
  }
  document.body.dataset.state = view;
}

/** announce puts a short message in the polite live region. */
export function announce(text) {
  $('[data-status]').textContent = text;
}

/** setRoomName shows the session's name in the header. */
export function setRoomName(name) {
  const el = $('[data-room]');
  el.textContent = name;
  el.hidden = !name;
}

/**
 * showMessage ends on a message, with a button labelled retryLabel when
 * trying again can help: quote is someone's own words (the therapist's
 * reason), extra a second, quieter paragraph.
 */
export function showMessage({ title, text, next = '', quote = '', extra = '', retry = false, retryLabel = 'Try again' }) {
  $('[data-message-title]').textContent = title;
  $('[data-message-text]').textContent = text;
  const n = $('[data-message-next]');
  n.textContent = next;
  n.hidden = !next;
  $('[data-message-week]').hidden = true;
  const q = $('[data-message-quote]');
  q.textContent = quote;
  q.hidden = !quote;
  const x = $('[data-message-extra]');
  x.textContent = extra;
  x.hidden = !extra;
  const again = $('[data-action="rejoin"]');
  again.textContent = retryLabel;
  again.hidden = !retry;
  show('message');
  announce('');
  $('[data-message-title]').focus();
}

/** The kind ("audio", "video") the notice about a therapist's mute is about, while it shows. */
let noticeKind = '';

/** noticeIs reports whether the notice shown is about kind. */
export function noticeIs(kind) {
  return noticeKind === kind;
}

/** showNotice shows a message above the video that stays until dismissed. */
export function showNotice(text, kind = '') {
  $('[data-notice-text]').textContent = text;
  $('[data-notice]').hidden = false;
  noticeKind = kind;
  announce(text);
}

/** hideNotice removes the notice above the video. */
export function hideNotice() {
  $('[data-notice]').hidden = true;
  noticeKind = '';
}

/**
 * ask opens a confirmation dialog and resolves to whether the person
 * confirmed. Escape and Cancel say no.
 */
export function ask(name) {
  const dialog = $(`dialog[data-dialog="${name}"]`);
  const opener = document.activeElement;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm');
      if (opener && opener.isConnected && !opener.closest('[hidden]')) {
        opener.focus();
      }
    }, { once: true });
  });
}

/** closeDialogs closes any open dialog, as when the session ends under it. */
export function closeDialogs() {
  for (const d of $$('dialog[open]')) {
    d.close('cancel');
  }
}
