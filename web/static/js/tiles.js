// tiles.js is the call's video grid: a tile per participant, laid out to
// fit the stage, with the streams received from them, and the simulcast
// layer each remote tile asks for (docs/protocol.md, "layer") by the size it
// is drawn at.

import { applySink } from './devices.js';
import { $, parts, state } from './joinstate.js';

/** A pending choice of the others' video layers. */
let layerTimer = 0;

/** A ResizeObserver of the others' tiles, and an IntersectionObserver of them on the stage (watchStage). */
let tileSizes = null;
let tileSight = null;

/**
 * The widths in pixels of the simulcast layers of a 1280-wide camera, smallest
 * first, with the quality the layer message names them by. Each tile asks
 * for the smallest layer at least as wide as the tile shows it.
 */
const LAYERS = [
  { quality: 'low', width: 320 },
  { quality: 'medium', width: 640 },
  { quality: 'high', width: 1280 },
];

/** How long tile sizes may settle before the layers are chosen again, in milliseconds. */
const LAYER_SETTLE = 250;

/** initials returns up to two letters for a camera-off placeholder. */
function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  return words.slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';
}

/** setVideoShown shows a tile's video, or a placeholder with initials when the camera is off. */
export function setVideoShown(tile, shown, name) {
  tile.classList.toggle('video-off', !shown);
  const ph = $('[data-placeholder]', tile);
  ph.textContent = initials(name);
  ph.hidden = shown;
}

/** The width:height of a tile, as in join.css. */
const TILE_ASPECT = 4 / 3;

/** The smallest tile width in CSS pixels; below it the stage scrolls. */
const MIN_TILE_WIDTH = 160;

/** Below this stage width in CSS pixels (phones held upright) a one-to-one call shows your own view small, in a corner. */
const PIP_BELOW = 420;

/**
 * layoutTiles sizes the tiles so that all of them fit on the stage, as large
 * as they can be: it tries every column count, and sets the tile width and
 * the grid width that the grid's auto-fit columns follow.
 */
export function layoutTiles() {
  const stage = $('[data-stage]');
  const grid = $('[data-tiles]');
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
  const width = stage.clientWidth;
  const height = stage.clientHeight;
  // One to one on a narrow screen (a phone): the other person fills the
  // stage and your own view is a small picture in its corner.
  const shown = [...grid.children].filter((el) => !el.hidden).length; // breakouts hide the other groups
  const pip = stage.dataset.layout === 'grid' && shown === 2 && !!$('.tile-self', grid) && width > 0 && width < PIP_BELOW;
  grid.classList.toggle('tiles-pip', pip);
  const n = pip ? 1 : shown;
  if (n === 0 || width === 0 || height === 0) {
    return;
  }
  let best = { cols: 1, tile: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const tile = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * TILE_ASPECT);
    if (tile > best.tile) {
      best = { cols, tile };
    }
  }
  const tile = Math.floor(Math.max(best.tile, MIN_TILE_WIDTH));
  grid.style.setProperty('--tile-width', `${tile}px`);
  grid.style.setProperty('--grid-width', `${best.cols * tile + (best.cols - 1) * gap}px`);
}

/**
 * makeTile creates the tile of participant id from the template and adds it
 * to the tiles; video is the element to show, or null for a new one.
 */
function makeTile(id, video) {
  const el = $('#tile-template').content.firstElementChild.cloneNode(true);
  el.dataset.tile = id;
  if (video) {
    $('video', el).replaceWith(video);
  }
  // layer: the quality last asked for of their video; shown: on the stage's visible part.
  const tile = { el, video: $('video', el), p: null, layer: '', shown: true };
  state.tiles.set(id, tile);
  return tile;
}

/** tileFor returns the tile of a participant, creating a remote one when missing. */
export function tileFor(id) {
  let tile = state.tiles.get(id);
  if (!tile) {
    tile = makeTile(id, null);
    tile.video.dataset.participant = id;
    tile.video.addEventListener('loadedmetadata', scheduleLayers);
    $('[data-tiles]').append(tile.el);
    watchTile(tile, true);
    layoutTiles();
    playStream(id);
    parts.layout.tilesChanged();
  }
  return tile;
}

/** renderTile shows a participant's name, microphone, camera and hand state. */
export function renderTile(tile, p) {
  tile.p = p;
  const you = state.you && p.id === state.you.id;
  $('[data-name]', tile.el).textContent = you ? `${p.name} (you)` : p.name;
  $('[data-muted]', tile.el).hidden = p.audio;
  $('[data-camera-off]', tile.el).hidden = p.video;
  $('[data-hand]', tile.el).hidden = !p.hand;
  tile.el.classList.toggle('tile-hand', !!p.hand);
  tile.video.setAttribute('aria-label', you ? 'Your video' : `Video of ${p.name}`);
  setVideoShown(tile.el, p.video, p.name);
  scheduleLayers();
}

/** addSelfTile moves the local preview into the grid as your own tile. */
export function addSelfTile(you) {
  const tile = makeTile(you.id, $('video[data-local]'));
  // After a reconnection, your tile of the lost connection goes (its video moved).
  for (const [id, t] of state.tiles) {
    if (t !== tile && t.el.classList.contains('tile-self')) {
      t.el.remove();
      state.tiles.delete(id);
    }
  }
  tile.el.classList.add('tile-self');
  $('[data-tiles]').prepend(tile.el);
  renderTile(tile, { ...you, audio: state.audio, video: state.video, hand: state.hand });
  tile.video.play().catch(() => {});
  layoutTiles();
}

/** removeTile drops a participant's tile. */
export function removeTile(id) {
  const tile = state.tiles.get(id);
  if (!tile) {
    return;
  }
  tile.video.srcObject = null;
  watchTile(tile, false);
  tile.el.remove();
  state.tiles.delete(id);
  state.streams.delete(id);
  layoutTiles();
  parts.layout.tilesChanged();
}

/**
 * attachStream keeps a stream received from a participant and plays it in
 * their tile. A stream of someone not (or no longer) in the room gets no tile.
 * A new video track starts at the server's default layer: the layer that
 * fits the tile is asked for again.
 */
export function attachStream(id, stream, track) {
  state.streams.set(id, stream);
  const tile = state.tiles.get(id);
  if (tile && track?.kind === 'video') {
    tile.layer = '';
  }
  playStream(id);
  scheduleLayers();
}

/** playStream plays the stream received from a participant, if any, in their tile. */
function playStream(id) {
  const tile = state.tiles.get(id);
  const stream = state.streams.get(id);
  if (!tile || !stream || tile.video.srcObject === stream) {
    return;
  }
  tile.video.srcObject = stream;
  applySink(tile.video);
  for (const t of stream.getVideoTracks()) {
    t.enabled = !state.audioOnly;
  }
  tile.video.play().catch(() => {});
}

/** clearTiles empties the grid and puts the local preview back in the device check. */
export function clearTiles() {
  const slot = $('[data-preview-slot]');
  if (!$('video', slot)) {
    slot.prepend($('video[data-local]'));
  }
  for (const id of [...state.tiles.keys()]) {
    removeTile(id);
  }
}

/**
 * watchTile starts (or stops) following a remote tile's size and whether it
 * is on the visible part of the stage, for choosing its layer.
 */
function watchTile(tile, on) {
  for (const o of [tileSizes, tileSight]) {
    if (o && on) {
      o.observe(tile.el);
    } else if (o) {
      o.unobserve(tile.el);
    }
  }
}

/** onTileSight records which tiles are on the visible part of the stage. */
function onTileSight(entries) {
  for (const e of entries) {
    const tile = state.tiles.get(e.target.dataset.tile);
    if (tile) {
      tile.shown = e.isIntersecting;
    }
  }
  scheduleLayers();
}

/**
 * drawnWidth is the width in CSS pixels at which a tile draws its video:
 * the video covers the tile (object-fit: cover), so a picture wider than
 * the tile is drawn wider than the tile and cropped at the sides. Until the
 * video's size is known, it counts as 16:9.
 */
function drawnWidth(video) {
  const aspect = video.videoWidth > 0 && video.videoHeight > 0 ? video.videoWidth / video.videoHeight : 16 / 9;
  return Math.max(video.clientWidth, video.clientHeight * aspect);
}

/**
 * wantedQuality returns the layer a remote tile needs: "low" when its video
 * is not shown (camera off, audio only, scrolled away, page hidden), else
 * the smallest layer that covers the device pixels it is drawn on.
 */
function wantedQuality(tile) {
  if (!tile.p?.video || state.audioOnly || !tile.shown || document.hidden) {
    return LAYERS[0].quality;
  }
  const need = drawnWidth(tile.video) * (window.devicePixelRatio || 1);
  const fit = LAYERS.find((l) => l.width >= need) || LAYERS[LAYERS.length - 1];
  return fit.quality;
}

/**
 * chooseLayers asks the server for the layer that fits each remote tile
 * whose video has arrived, when it differs from the one asked for last.
 */
function chooseLayers() {
  if (!state.joined || !state.session) {
    return;
  }
  for (const [id, tile] of state.tiles) {
    const stream = state.streams.get(id);
    if (id === state.you?.id || !stream || stream.getVideoTracks().length === 0) {
      continue;
    }
    const quality = wantedQuality(tile);
    if (quality !== tile.layer) {
      tile.layer = quality;
      state.session.setLayer(id, quality);
    }
  }
}

/**
 * scheduleLayers chooses the layers once the layout has settled for
 * LAYER_SETTLE ms, so that a window being resized sends a few messages,
 * not one per frame.
 */
export function scheduleLayers() {
  clearTimeout(layerTimer);
  layerTimer = setTimeout(() => {
    layerTimer = 0;
    chooseLayers();
  }, LAYER_SETTLE);
}

/**
 * watchStage starts following the stage: the others' tile sizes and which
 * of them are on its visible part, for choosing their layers.
 */
export function watchStage(stage) {
  tileSizes = new ResizeObserver(scheduleLayers);
  tileSight = new IntersectionObserver(onTileSight, { root: stage });
}
