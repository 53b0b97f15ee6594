// devices.js is the camera and microphone: the device check's preview,
// the choice of camera, microphone and speaker, the level meter, and your
// microphone, camera and hand buttons. The chosen devices and the meter are
// its own.

import { $, $$, state } from './joinstate.js';
import { renderTile, setVideoShown } from './tiles.js';
import { announce, hideNotice, noticeIs } from './views.js';

/** The chosen devices' ids ('' = default). */
const picked = { videoinput: '', audioinput: '', audiooutput: '' };

/** The level meter while it runs: {ctx, resume, frame}. */
let meter = null;

/** mediaProblem explains why the camera or microphone could not start. */
function mediaProblem(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
      return 'Your browser did not allow the camera and microphone. Allow them in the site settings, then reload this page.';
    case 'NotFoundError':
      return 'No camera or microphone was found. Connect one, then reload this page.';
    case 'NotReadableError':
      return 'Your camera or microphone is being used by another app. Close that app, then reload this page.';
    default:
      return 'Your camera and microphone could not be started. Reload this page to try again.';
  }
}

/** openDevices asks for camera and microphone, falling back to the microphone alone. */
async function openDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('This browser cannot use a camera here. Open the link in a current Chrome, Firefox, Edge or Safari.');
  }
  const chosen = (kind) => (picked[kind] ? { deviceId: { exact: picked[kind] } } : {});
  // 1280x720 when the camera can, for the full simulcast layer; ideal never fails.
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, ...chosen('videoinput') };
  const audio = picked.audioinput ? chosen('audioinput') : true;
  try {
    return await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (err) {
    if (err.name === 'NotAllowedError') {
      throw err;
    }
    return navigator.mediaDevices.getUserMedia({ audio });
  }
}

/** canChooseSpeaker reports whether this browser can play sound on a chosen output. */
function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * listDevices fills the camera, microphone and speaker choices of the device
 * check, marking the devices in use; a kind with no device hides its choice.
 */
async function listDevices() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    devices = [];
  }
  const inUse = {
    videoinput: state.stream?.getVideoTracks()[0]?.getSettings().deviceId || '',
    audioinput: state.stream?.getAudioTracks()[0]?.getSettings().deviceId || '',
    audiooutput: picked.audiooutput,
  };
  const names = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };
  let any = false;
  for (const sel of $$('select[data-device]')) {
    const kind = sel.dataset.device;
    const list = devices.filter((d) => d.kind === kind && d.deviceId);
    const field = sel.closest('[data-device-field]');
    const shown = list.length > 0 && (kind !== 'audiooutput' || canChooseSpeaker());
    field.hidden = !shown;
    any = any || shown;
    sel.replaceChildren(...list.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${names[kind]} ${i + 1}`;
      o.selected = d.deviceId === inUse[kind];
      return o;
    }));
  }
  $('[data-devices]').hidden = !any;
}

/** chooseDevice switches to the camera, microphone or speaker chosen in the device check. */
export function chooseDevice(sel) {
  const kind = sel.dataset.device;
  picked[kind] = sel.value;
  if (kind === 'audiooutput') {
    for (const v of $$('video[data-participant]')) {
      applySink(v);
    }
    return;
  }
  stopDevices();
  state.preview = startPreview();
}

/** applySink plays a remote video's sound on the chosen speaker. */
export function applySink(video) {
  if (picked.audiooutput && canChooseSpeaker()) {
    video.setSinkId(picked.audiooutput).catch(() => {});
  }
}

/** startPreview opens the devices and shows them in the preview. */
export async function startPreview() {
  const status = $('[data-device-status]');
  status.textContent = 'Starting your camera and microphone…';
  try {
    state.stream = await openDevices();
    status.textContent = state.stream.getVideoTracks().length
      ? ''
      : 'No camera is available. Others will hear you but not see you.';
  } catch (err) {
    state.stream = null;
    status.textContent = `${mediaProblem(err)} You can still join to see and hear the others.`;
  }
  const video = $('video[data-local]');
  video.srcObject = state.stream;
  applyLocalMedia();
  startMeter();
  await listDevices();
}

/** stopDevices turns the camera and microphone off. */
export function stopDevices() {
  stopMeter();
  for (const t of state.stream ? state.stream.getTracks() : []) {
    t.stop();
  }
  state.stream = null;
  $('video[data-local]').srcObject = null;
}

/** hasTrack reports whether the local stream has a track of kind. */
function hasTrack(kind) {
  return !!state.stream && state.stream.getTracks().some((t) => t.kind === kind);
}

/**
 * startMeter shows the microphone level so that people can see it works. It
 * is a visual aid only: a level read out many times a second helps nobody.
 */
function startMeter() {
  if (!hasTrack('audio') || !window.AudioContext) {
    return;
  }
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(state.stream).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  const fill = $('[data-meter-fill]');
  const tick = () => {
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const s of samples) {
      peak = Math.max(peak, Math.abs(s - 128));
    }
    const level = state.audio ? Math.min(100, Math.round((peak / 128) * 200)) : 0;
    fill.style.width = `${level}%`;
    meter.frame = requestAnimationFrame(tick);
  };
  // A page without a click yet may start the context suspended.
  const resume = () => ctx.resume().catch(() => {});
  document.addEventListener('click', resume, { once: true });
  meter = { ctx, resume, frame: requestAnimationFrame(tick) };
  $('[data-meter]').hidden = false;
}

/** stopMeter stops the level meter. */
export function stopMeter() {
  if (!meter) {
    return;
  }
  cancelAnimationFrame(meter.frame);
  document.removeEventListener('click', meter.resume);
  meter.ctx.close();
  meter = null;
  $('[data-meter]').hidden = true;
}

/** applyLocalMedia sets the tracks, buttons and own tile to the chosen mic and camera state. */
export function applyLocalMedia() {
  if (!hasTrack('audio')) {
    state.audio = false;
  }
  if (!hasTrack('video')) {
    state.video = false;
  }
  for (const t of state.stream ? state.stream.getTracks() : []) {
    t.enabled = t.kind === 'audio' ? state.audio : state.video;
  }
  for (const b of $$('[data-action="toggle-audio"]')) {
    b.textContent = state.audio ? 'Mute microphone' : 'Unmute microphone';
    b.disabled = !hasTrack('audio');
    b.classList.toggle('btn-off', !state.audio);
  }
  for (const b of $$('[data-action="toggle-video"]')) {
    b.textContent = state.video ? 'Turn camera off' : 'Turn camera on';
    b.disabled = !hasTrack('video') || state.audioOnly;
    b.classList.toggle('btn-off', !state.video);
  }
  setVideoShown($('[data-preview-slot]'), state.video, state.claims?.name);
}

/**
 * toggle flips the microphone or camera and tells the room when in a
 * session. Turning a kind back on after a therapist muted it is the
 * person's choice: the server forwards it again.
 */
export function toggle(kind) {
  state[kind] = !state[kind];
  applyLocalMedia();
  if (state[kind] && noticeIs(kind)) {
    hideNotice();
  }
  if (state.joined) {
    state.session.setMedia(state.audio, state.video);
    renderSelf();
  }
}

/** toggleHand raises or lowers your hand. */
export function toggleHand() {
  if (!state.joined) {
    return;
  }
  state.hand = !state.hand;
  state.session.raiseHand(state.hand);
  renderHandButton();
  renderSelf();
  announce(state.hand ? 'You raised your hand. Your therapist can see it.' : 'You lowered your hand.');
}

/** renderHandButton shows whether your hand is raised. */
export function renderHandButton() {
  const b = $('[data-action="hand"]');
  b.textContent = state.hand ? 'Lower hand' : 'Raise hand';
  b.setAttribute('aria-pressed', String(state.hand));
  b.classList.toggle('btn-on', state.hand);
}

/** renderSelf shows your own microphone, camera and hand state on your tile. */
export function renderSelf() {
  const you = state.you && state.tiles.get(state.you.id);
  if (you) {
    renderTile(you, { ...you.p, audio: state.audio, video: state.video, hand: state.hand });
  }
}
