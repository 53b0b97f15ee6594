// screen.js is the call's layout beyond the grid: a shared screen shown
// large with the people as a strip, a spotlighted or pinned person shown
// large, and the active speaker brought to the front of the grid. It also
// holds the screen-share button and the therapist's switch that lets
// clients share. The server decides who may share and spotlight
// (docs/protocol.md); this module only shows what the room says.

import { SCREEN_ID } from './protocol.js';

/** How many statistics samples in a row (300 ms apart) make someone the active speaker. */
const SPEAKER_SAMPLES = 3;

/** The shortest time between two moves of the active speaker to the front, in milliseconds. */
const SPEAKER_HOLD = 4000;

/** What to say when a share is refused or ends. */
const screenErrors = {
  screen_off: 'Your therapist has not turned on screen sharing for clients in this session.',
  screen_busy: 'Someone else is sharing their screen. You can share once they stop.',
};

/**
 * Stage lays out the call's stage: "grid" (everyone alike), "screen" (the
 * shared screen large, the people as a strip) or "spotlight" (one person
 * large: your own pin first, else the therapist's spotlight).
 */
export class Stage {
  /**
   * @param {object} o
   * @param {HTMLElement} o.stage the stage, whose data-layout this sets
   * @param {HTMLElement} o.featured where the large tile goes
   * @param {HTMLElement} o.tiles the grid of tiles (a strip when featured)
   * @param {HTMLButtonElement} o.share the share / stop sharing button
   * @param {HTMLButtonElement} o.allow the therapist's switch letting clients share
   * @param {HTMLButtonElement} o.stopOther the therapist's button ending another's share
   * @param {() => Map<string, {el: HTMLElement, p: object}>} o.tileMap the tiles by participant id
   * @param {() => object|null} o.session the Session
   * @param {() => object|null} o.you who you are in the session
   * @param {() => void} o.relayout sizes the grid again
   * @param {(text: string) => void} o.announce tells screen readers
   * @param {(text: string) => void} o.notice shows a notice above the video
   */
  constructor(o) {
    Object.assign(this, o);
    this.room = {};
    this.capture = null; // your screen capture (a MediaStream) while you share or ask to
    this.screens = new Map(); // participant id -> the MediaStream of their screen
    this.pin = ''; // the tile you pinned for yourself
    this.speaker = { id: '', since: 0, runs: new Map() };
    this.screenTile = this.makeScreenTile();
    this.share.addEventListener('click', () => (this.capture ? this.stopSharing() : this.startSharing()));
    this.allow.addEventListener('click', () => this.session()?.allowScreen(!this.room.screen_allowed));
    this.stopOther.addEventListener('click', () => this.session()?.stopScreen(this.room.screen?.participant || ''));
    this.tiles.addEventListener('click', (e) => this.onTileButton(e));
    this.featured.addEventListener('click', (e) => this.onTileButton(e));
  }

  /** makeScreenTile builds the large tile a shared screen plays in. */
  makeScreenTile() {
    const fig = document.createElement('figure');
    fig.className = 'tile tile-screen';
    fig.dataset.screenTile = '';
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    const label = document.createElement('figcaption');
    label.className = 'label';
    const name = document.createElement('span');
    name.className = 'label-name';
    label.append(name);
    fig.append(video, label);
    return fig;
  }

  /** start follows a new session's room, as joined says it. */
  start(room) {
    this.room = room || {};
    this.screens.clear();
    this.render();
  }

  /** setRoom follows the room's share, who may share and the spotlight. */
  setRoom(room) {
    const before = this.room;
    this.room = room || {};
    const was = before.screen?.participant || '';
    const now = this.room.screen?.participant || '';
    if (was !== now) {
      this.announce(now ? `${this.nameOf(now)} is sharing their screen.` : 'Screen sharing ended.');
    }
    if ((before.spotlight || '') !== (this.room.spotlight || '') && this.room.spotlight) {
      this.announce(`${this.nameOf(this.room.spotlight)} is in the spotlight.`);
    }
    if (!!before.screen_allowed !== !!this.room.screen_allowed && !this.isTherapist()) {
      this.announce(this.room.screen_allowed ? 'You can now share your screen.' : 'Screen sharing is off for clients.');
    }
    this.render();
  }

  /** screenTrack keeps the stream of a participant's shared screen. */
  screenTrack({ participantId, stream }) {
    this.screens.set(participantId, stream);
    this.render();
  }

  /** nameOf is a participant's display name, or "You". */
  nameOf(id) {
    if (id === this.you()?.id) {
      return 'You';
    }
    return this.tileMap().get(id)?.p?.name || 'Someone';
  }

  /** isTherapist reports whether you are a therapist (the server decides what you may do). */
  isTherapist() {
    return this.you()?.role === 'therapist';
  }

  /** featuredLayout reports whether one tile is shown large (the grid is a strip). */
  featuredLayout() {
    return this.stage.dataset.layout === 'screen' || this.stage.dataset.layout === 'spotlight';
  }

  /** render lays the stage out for the room's state and your pin. */
  render() {
    const tiles = this.tileMap();
    const presenter = this.room.screen?.participant || '';
    let layout = 'grid';
    let large = '';
    if (presenter && (tiles.has(presenter) || presenter === this.you()?.id)) {
      layout = 'screen';
    } else if (this.pin && tiles.has(this.pin)) {
      layout = 'spotlight';
      large = this.pin;
    } else if (this.room.spotlight && tiles.has(this.room.spotlight)) {
      layout = 'spotlight';
      large = this.room.spotlight;
    }
    // A tile that is no longer large goes back to the grid, yours first.
    for (const el of [...this.featured.children]) {
      if (el === this.screenTile ? layout !== 'screen' : el.dataset.tile !== large) {
        if (el === this.screenTile) {
          el.remove();
        } else if (el.classList.contains('tile-self')) {
          this.tiles.prepend(el);
        } else {
          this.tiles.append(el);
        }
      }
    }
    if (layout === 'screen') {
      this.showScreen(presenter);
    } else if (large && tiles.get(large).el.parentElement !== this.featured) {
      this.featured.append(tiles.get(large).el);
    }
    this.stage.dataset.layout = layout;
    this.featured.hidden = layout === 'grid';
    this.renderButtons(tiles);
    this.relayout();
  }

  /** showScreen plays the presenter's screen in the large tile. */
  showScreen(presenter) {
    const fig = this.screenTile;
    if (fig.parentElement !== this.featured) {
      this.featured.append(fig);
    }
    const video = fig.querySelector('video');
    const mine = presenter === this.you()?.id;
    // Your own screen is shown from the capture, muted: hearing it back would echo.
    const stream = mine ? this.capture : this.screens.get(presenter);
    video.muted = mine;
    fig.dataset.participant = presenter;
    fig.querySelector('.label-name').textContent = mine ? 'You are sharing your screen' : `${this.nameOf(presenter)}'s screen`;
    video.setAttribute('aria-label', mine ? 'Your shared screen' : `Screen shared by ${this.nameOf(presenter)}`);
    if (stream && video.srcObject !== stream) {
      video.srcObject = stream;
      video.play().catch(() => {});
    }
    fig.classList.toggle('tile-waiting', !stream);
  }

  /** renderButtons shows the share button, the therapist's switch and each tile's pin and spotlight. */
  renderButtons(tiles) {
    const therapist = this.isTherapist();
    this.share.hidden = !(therapist || this.room.screen_allowed) && !this.capture;
    this.share.setAttribute('aria-pressed', String(!!this.capture));
    this.share.textContent = this.capture ? 'Stop sharing' : 'Share screen';
    this.allow.setAttribute('aria-pressed', String(!!this.room.screen_allowed));
    this.allow.textContent = this.room.screen_allowed ? 'Clients may share their screen' : 'Let clients share their screen';
    const presenter = this.room.screen?.participant || '';
    this.stopOther.hidden = !presenter || presenter === this.you()?.id;
    this.stopOther.textContent = presenter ? `Stop ${this.nameOf(presenter)}'s screen share` : 'Stop the screen share';
    for (const [id, t] of tiles) {
      const name = t.p?.name || '';
      const pin = t.el.querySelector('[data-pin]');
      if (pin) {
        const on = this.pin === id;
        pin.setAttribute('aria-pressed', String(on));
        pin.textContent = on ? 'Unpin' : 'Pin';
        pin.setAttribute('aria-label', `${on ? 'Unpin' : 'Pin'} ${name} for yourself`);
      }
      const spot = t.el.querySelector('[data-spotlight]');
      if (spot) {
        const on = this.room.spotlight === id;
        spot.hidden = !therapist;
        spot.setAttribute('aria-pressed', String(on));
        spot.textContent = on ? 'End spotlight' : 'Spotlight';
        spot.setAttribute('aria-label', `${on ? 'End the spotlight on' : 'Spotlight'} ${name} for everyone`);
      }
      t.el.classList.toggle('tile-spotlight', this.room.spotlight === id);
    }
  }

  /** onTileButton handles a tile's pin and spotlight buttons. */
  onTileButton(e) {
    const b = e.target.closest('button[data-pin], button[data-spotlight]');
    const id = b?.closest('[data-tile]')?.dataset.tile;
    if (!id) {
      return;
    }
    if (b.hasAttribute('data-pin')) {
      this.pin = this.pin === id ? '' : id;
      this.render();
      b.focus();
      return;
    }
    this.session()?.spotlight(this.room.spotlight === id ? '' : id);
  }

  /** tilesChanged lays out again when someone came or left. */
  tilesChanged() {
    if (this.pin && !this.tileMap().has(this.pin)) {
      this.pin = '';
    }
    this.render();
  }

  /** startSharing captures a screen, window or tab and asks the room to share it. */
  async startSharing() {
    const session = this.session();
    if (!session || !navigator.mediaDevices?.getDisplayMedia) {
      this.notice('This browser cannot share a screen.');
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: true });
    } catch {
      return; // the person chose nothing
    }
    for (const t of stream.getVideoTracks()) {
      t.contentHint = 'detail'; // text stays sharp; the frame rate gives way first
    }
    // The browser's own "Stop sharing" ends the capture's tracks.
    for (const t of stream.getTracks()) {
      t.addEventListener('ended', () => {
        if (this.capture === stream) {
          this.stopSharing();
        }
      });
    }
    this.capture = stream;
    session.shareScreen(stream);
    this.render();
  }

  /** stopSharing ends your share. */
  stopSharing() {
    this.session()?.stopScreen();
    this.captureEnded();
  }

  /** captureEnded stops your capture: the share ended, whoever ended it. */
  captureEnded() {
    const stream = this.capture;
    if (!stream) {
      return;
    }
    this.capture = null;
    for (const t of stream.getTracks()) {
      t.stop();
    }
    this.render();
  }

  /** error handles the answer to a refused share; it reports whether it did. */
  error(err) {
    if (err.re !== SCREEN_ID) {
      return false;
    }
    this.notice(screenErrors[err.code] || 'Your screen could not be shared.');
    return true;
  }

  /**
   * speaking follows who speaks (participant ids whose audio is above the
   * speaking level in a statistics sample): someone who speaks for
   * SPEAKER_SAMPLES samples in a row comes to the front of the grid, right
   * after you, at most once every SPEAKER_HOLD ms.
   */
  speaking(ids) {
    const sp = this.speaker;
    for (const id of [...sp.runs.keys()]) {
      if (!ids.has(id)) {
        sp.runs.delete(id);
      }
    }
    let best = '';
    for (const id of ids) {
      const n = (sp.runs.get(id) || 0) + 1;
      sp.runs.set(id, n);
      if (n >= SPEAKER_SAMPLES && (!best || n > sp.runs.get(best))) {
        best = id;
      }
    }
    const now = Date.now();
    if (!best || best === sp.id || now - sp.since < SPEAKER_HOLD) {
      return;
    }
    sp.id = best;
    sp.since = now;
    for (const [id, t] of this.tileMap()) {
      t.el.style.order = id === best ? '-1' : '';
    }
  }
}
