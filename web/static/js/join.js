// join.js is the page behind a join link (/join#token=<JWT>): a device check
// with a camera preview, the waiting room, then the session's video grid and
// controls, with the therapist's console for therapists. It starts the page
// and dispatches its buttons; the parts are modules: link.js (the token and
// link check), devices.js, tiles.js (tiles and layers), call.js (the session's
// events), hostconsole.js, reconnect.js, callstats.js (speaker, weak link,
// audio only), myschedule.js, views.js and statustext.js (the words), over
// joinstate.js (what they share). protocol.js does everything on the wire.
//
// The words on screen are for people in recovery, often on a phone and under
// stress: plain, kind, and never blaming.

import { decodeClaims } from './api.js';
import { Chat } from './chat.js';
import { Telehealth } from './checkin.js';
import { Breakouts } from './breakout.js';
import { Stage } from './screen.js';
import { join, leave } from './call.js';
import { hideWeak, linkReport, toggleAudioOnly } from './callstats.js';
import { chooseDevice, startPreview, toggle, toggleHand } from './devices.js';
import { askEnd, askRemove, mute } from './hostconsole.js';
import { $, joiningRoom, parts, state } from './joinstate.js';
import { checkLink, describeInvite, keepPlace, readToken } from './link.js';
import { checkConnection, copyCalendar, loadCalendar, loadMyWeek, loadSchedule } from './myschedule.js';
import { layoutTiles, scheduleLayers, watchStage } from './tiles.js';
import { announce, hideNotice, setRoomName, show, showMessage, showNotice } from './views.js';

/** rejoin goes back to the device check. */
async function rejoin() {
  state.audio = true;
  state.video = true;
  state.audioOnly = false;
  const problem = await checkLink();
  if (problem) {
    showMessage(problem);
    return;
  }
  state.checkin = await parts.telehealth.before(state.token, state.link);
  showPrejoin();
  loadMyWeek($('[data-my-week]'));
}

/** showPrejoin shows the device check and starts the preview. */
function showPrejoin() {
  setRoomName(state.sessionTitle || joiningRoom());
  $('[data-action="join"]').disabled = false;
  show('prejoin');
  state.preview = startPreview();
}

/** onClick dispatches the page's buttons by their data-action. */
function onClick(e) {
  const b = e.target.closest('button[data-action]');
  if (!b || b.disabled) {
    return;
  }
  const id = b.dataset.participant;
  const actions = {
    join,
    leave,
    rejoin,
    'toggle-audio': () => toggle('audio'),
    'toggle-video': () => toggle('video'),
    hand: toggleHand,
    'dismiss-notice': hideNotice,
    'audio-only': toggleAudioOnly,
    'dismiss-weak': hideWeak,
    admit: () => state.session?.admit(id),
    deny: () => {
      state.denied.add(id);
      state.session?.deny(id);
    },
    'mute-audio': () => mute(b, 'audio'),
    'mute-video': () => mute(b, 'video'),
    remove: () => askRemove(id),
    'make-host': () => state.session?.host(id),
    lock: () => state.session?.lock(!state.locked),
    'auto-admit': () => state.session?.autoAdmit(!state.autoAdmit),
    end: askEnd,
    'copy-calendar': copyCalendar,
    'rotate-calendar': () => loadCalendar('POST'),
    'check-connection': checkConnection,
  };
  actions[b.dataset.action]?.();
}

/** onDialogCancel closes a dialog from its Cancel button. */
function onDialogCancel(e) {
  const b = e.target.closest('[data-dialog-cancel]');
  if (b) {
    b.closest('dialog').close('cancel');
  }
}

async function main() {
  parts.chat = new Chat($('[data-chat]'), $('[data-chat-toggle]'), {
    send: (text, priv) => state.session?.chat(text, priv),
    remove: (id) => state.session?.removeChat(id),
    enable: (on) => state.session?.enableChat(on),
    announce,
  });
  parts.telehealth = new Telehealth({ consentView: $('[data-view="consent"]'), checkInView: $('[data-view="checkin"]'), show, announce });
  parts.breakouts = new Breakouts({
    banner: $('[data-breakout-banner]'),
    console: $('[data-breakout-console]'),
    tiles: $('[data-tiles]'),
    session: () => state.session,
    people: () => [...state.tiles.values()].map((t) => t.p).filter(Boolean),
    relayout: layoutTiles,
    announce,
  });
  parts.layout = new Stage({
    stage: $('[data-stage]'),
    featured: $('[data-featured]'),
    tiles: $('[data-tiles]'),
    share: $('[data-screen-share]'),
    allow: $('[data-screen-allow]'),
    stopOther: $('[data-screen-stop]'),
    tileMap: () => state.tiles,
    session: () => (state.joined ? state.session : null),
    you: () => state.you,
    relayout: layoutTiles,
    announce,
    notice: (text) => showNotice(text),
  });
  document.addEventListener('click', onClick);
  document.addEventListener('click', onDialogCancel);
  document.addEventListener('change', (e) => {
    if (e.target.matches('select[data-device]')) {
      chooseDevice(e.target);
    }
  });
  // Hooks for browser tests: the PeerConnections to read statistics from,
  // and a drop of the connection as a network failure would cause.
  window.__iop = {
    peerConnections: () => [state.session?.publish?.pc, state.session?.subscribe?.pc].filter(Boolean),
    dropConnection: () => state.session?.drop(),
    // The browser's own "Stop sharing": the capture's tracks end.
    endCapture: () => parts.layout.capture?.getTracks().forEach((t) => { t.stop(); t.dispatchEvent(new Event('ended')); }),
    link: linkReport,
  };
  new ResizeObserver(layoutTiles).observe($('[data-stage]'));
  watchStage($('[data-stage]'));
  document.addEventListener('visibilitychange', scheduleLayers);
  // Another join link opened on this page changes only the fragment: start over with it.
  window.addEventListener('hashchange', () => {
    if (new URLSearchParams(location.hash.slice(1)).has('token')) {
      location.reload();
    }
  });
  // A reload keeps the place: in the call, the resume secret brings the
  // person back without the waiting room.
  window.addEventListener('pagehide', () => {
    state.unloading = true;
    if (state.joined) {
      keepPlace('call');
    } else if (state.waited && state.session) {
      keepPlace('waiting');
    }
  });
  state.token = readToken();
  if (!state.token) {
    show('no-token');
    return;
  }
  state.claims = decodeClaims(state.token);
  $('[data-who]').textContent = describeInvite(state.claims);
  // Refused before the camera turns on: the link check says why in its own words.
  const problem = state.autoJoin && state.resume ? null : await checkLink();
  if (problem) {
    setRoomName('');
    showMessage(problem);
    return;
  }
  state.checkin = await parts.telehealth.before(state.token, state.link, { auto: state.autoJoin });
  showPrejoin();
  if (state.autoJoin) {
    state.autoJoin = false;
    join();
  }
  loadSchedule();
  loadMyWeek($('[data-my-week]'));
  checkConnection();
}

main();
