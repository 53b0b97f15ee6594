// callstats.js reads the call's receive statistics: who is speaking, a
// weak link (linkquality.js) with the suggestion of audio only, and the
// audio-only mode itself.

import { judge, measure, WEAK_WINDOW } from './linkquality.js';
import { applyLocalMedia, renderSelf } from './devices.js';
import { $, $$, parts, state } from './joinstate.js';
import { scheduleLayers } from './tiles.js';
import { announce } from './views.js';

/** How often the call reads its receive statistics (speaker, weak link), in milliseconds. */
const STATS_EVERY = 300;

/** A remote audioLevel (0..1) at or above this counts as speaking. */
const SPEAKING_LEVEL = 0.04;

/** How often the link's quality is sampled, in STATS_EVERY ticks (about once a second). */
const LINK_EVERY = 3;

/** The receive statistics loop while in the call: {timer, busy, tick, samples, weakShown, why, seen}. */
let stats = null;

/** linkReport is what the weak-link watch has seen so far, for browser tests (join.js's window.__iop). */
export function linkReport() {
  return stats ? { samples: stats.samples.length, weak: stats.weakShown, why: stats.why || '', seen: stats.seen } : null;
}

/** startStats reads the receive statistics every STATS_EVERY ms while in the call. */
export function startStats() {
  stopStats();
  stats = { timer: setInterval(readStats, STATS_EVERY), busy: false, tick: 0, samples: [], weakShown: false };
}

/** stopStats stops reading statistics and clears the speaker highlight. */
export function stopStats() {
  if (stats) {
    clearInterval(stats.timer);
    stats = null;
  }
  for (const el of $$('.tile-speaking')) {
    el.classList.remove('tile-speaking');
  }
}

/**
 * readStats highlights whoever is speaking (the audioLevel of their inbound
 * audio) and, about once a second, samples the link's loss, round-trip time
 * and upload estimate (linkquality.js) to notice a weak link.
 */
async function readStats() {
  const st = stats;
  const pc = state.session?.subscribe?.pc;
  if (!st || st.busy || !pc) {
    return;
  }
  st.busy = true;
  const link = st.tick++ % LINK_EVERY === 0;
  const pub = link ? state.session?.publish?.pc : null;
  let report = null;
  let up = null;
  try {
    [report, up] = await Promise.all([pc.getStats(), pub ? pub.getStats() : null]);
  } catch {
    report = null;
  }
  st.busy = false;
  if (!report || stats !== st) {
    return;
  }
  const owner = new Map(); // track id -> participant id
  for (const [id, stream] of state.streams) {
    for (const t of stream.getAudioTracks()) {
      owner.set(t.id, id);
    }
  }
  const speaking = new Set();
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') {
      const who = owner.get(r.trackIdentifier);
      if (who && (r.audioLevel || 0) >= SPEAKING_LEVEL) {
        speaking.add(who);
      }
    }
  });
  for (const [id, tile] of state.tiles) {
    tile.el.classList.toggle('tile-speaking', speaking.has(id) && tile.p?.audio !== false);
  }
  parts.layout.speaking(speaking);
  if (link) {
    watchLink(st, measure(Date.now(), report, up));
  }
}

/** watchLink suggests audio-only mode once when the link stayed weak over WEAK_WINDOW. */
function watchLink(st, sample) {
  st.samples.push(sample);
  while (sample.t - st.samples[0].t > WEAK_WINDOW + 2000) {
    st.samples.shift();
  }
  if (st.weakShown || state.audioOnly) {
    return;
  }
  const { weak, why, ...seen } = judge(st.samples);
  st.why = why;
  st.seen = seen;
  if (weak) {
    st.weakShown = true;
    $('[data-weak]').hidden = false;
    announce('Your connection looks weak. Audio only may help.');
  }
}

/** hideWeak hides the suggestion to switch to audio only. */
export function hideWeak() {
  $('[data-weak]').hidden = true;
}

/**
 * toggleAudioOnly stops (or starts again) sending your video and showing the
 * others', to keep the conversation going on a weak link.
 */
export function toggleAudioOnly() {
  state.audioOnly = !state.audioOnly;
  if (state.audioOnly) {
    state.videoBefore = state.video;
    state.video = false;
  } else {
    state.video = state.videoBefore;
  }
  applyLocalMedia();
  if (state.joined) {
    state.session.setMedia(state.audio, state.video);
    renderSelf();
  }
  hideWeak();
  renderAudioOnly();
  announce(state.audioOnly ? 'Audio only: you hear everyone, and video is off.' : 'Video is back on.');
}

/** renderAudioOnly hides or shows the others' video and sets the button. */
export function renderAudioOnly() {
  document.body.classList.toggle('audio-only', state.audioOnly);
  for (const stream of state.streams.values()) {
    for (const t of stream.getVideoTracks()) {
      t.enabled = !state.audioOnly; // a disabled remote track is not rendered
    }
  }
  const b = $('[data-action="audio-only"][data-toggle]');
  b.textContent = state.audioOnly ? 'Show video' : 'Audio only';
  b.setAttribute('aria-pressed', String(state.audioOnly));
  b.classList.toggle('btn-on', state.audioOnly);
  scheduleLayers();
}
