// breakout.js is the breakout rooms of a session: for everyone, a banner
// that says which breakout you are in and the time left, and the tiles of
// your own group only (the server forwards no one else's media); for
// therapists, the controls to split the clients, move people, visit a
// breakout and bring everyone back. The server decides and enforces all of
// it (docs/protocol.md, section 4.9); this module only shows and asks.

const MAX_ROOMS = 10;

/** roomName names breakout n (0: the main room). */
export function roomName(n) {
  return n ? `Breakout room ${n}` : 'Main room';
}

/** timeLeft says how long until ends (a Date), as m:ss. */
export function timeLeft(ends, now = Date.now()) {
  const s = Math.max(0, Math.ceil((ends.getTime() - now) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Breakouts follows the breakout layout of the session and shows it.
 */
export class Breakouts {
  /**
   * @param {object} opts
   * @param {HTMLElement} opts.banner the banner over the tiles ([data-breakout-banner])
   * @param {HTMLElement} opts.console the therapists' section ([data-breakout-console])
   * @param {HTMLElement} opts.tiles the tile grid, whose [data-tile] children are shown or hidden
   * @param {() => ?import('./protocol.js').Session} opts.session the session to ask the server through
   * @param {() => Array<{id: string, name: string, role: string}>} opts.people who is admitted, you included
   * @param {() => void} opts.relayout lays the tiles out again once some are hidden or shown
   * @param {(text: string) => void} opts.announce says something to screen readers
   */
  constructor({ banner, console: section, tiles, session, people, relayout, announce }) {
    this.banner = banner;
    this.section = section;
    this.tiles = tiles;
    this.session = session;
    this.people = people;
    this.relayout = relayout;
    this.announce = announce;
    this.you = null;
    this.therapist = false;
    this.layout = null; // {rooms, ends: Date|null, groups: {id: n}}
    this.timer = 0;
    this.shown = ''; // what renderGroups last showed
    this.where = this.banner.querySelector('[data-breakout-where]');
    this.left = this.banner.querySelector('[data-breakout-left]');
    this.setup = section.querySelector('[data-breakout-setup]');
    this.live = section.querySelector('[data-breakout-live]');
    this.groupsList = section.querySelector('[data-breakout-groups]');
    this.rooms = section.querySelector('[data-breakout-rooms]');
    this.minutes = section.querySelector('[data-breakout-minutes]');
    this.rooms.max = String(MAX_ROOMS);
    section.querySelector('[data-breakout-open]').addEventListener('click', () => this.open(false));
    section.querySelector('[data-breakout-open-empty]').addEventListener('click', () => this.open(true));
    section.querySelector('[data-breakout-close]').addEventListener('click', () => this.session()?.breakoutClose());
    this.groupsList.addEventListener('change', (e) => {
      const sel = e.target.closest('select[data-breakout-move]');
      if (sel) {
        this.session()?.breakoutMove(sel.dataset.breakoutMove, Number(sel.value));
      }
    });
    this.groupsList.addEventListener('click', (e) => {
      const b = e.target.closest('button[data-breakout-visit]');
      if (b) {
        this.session()?.breakoutVisit(Number(b.dataset.breakoutVisit));
      }
    });
  }

  /** start follows the session you were just admitted to (room from joined). */
  start({ you, room }) {
    this.you = you;
    this.therapist = you.role === 'therapist';
    this.section.hidden = !this.therapist;
    this.set(room.breakout);
  }

  /** stop forgets the layout (the session ended). */
  stop() {
    this.set(null);
    this.section.hidden = true;
  }

  /** update applies a breakout message. */
  update(msg) {
    const before = this.group();
    this.set(msg.breakout);
    const after = this.group();
    if (msg.change === 'close') {
      this.announce(msg.by ? 'Everyone is back in the main room.' : 'Time is up: everyone is back in the main room.');
    } else if (after !== before) {
      this.announce(after ? `You are now in ${roomName(after).toLowerCase()}.` : 'You are back in the main room.');
    }
  }

  /** seen records a participant's group from participant_joined or _updated. */
  seen(p) {
    if (!this.layout || !p) {
      return;
    }
    if (p.group) {
      this.layout.groups[p.id] = p.group;
    } else {
      delete this.layout.groups[p.id];
    }
    this.render();
  }

  /** group is the breakout participant id (default: you) is in; 0 the main room. */
  group(id = this.you?.id) {
    return (this.layout && this.layout.groups[id]) || 0;
  }

  /** set takes a layout as the server sends it (null: none open). */
  set(breakout) {
    this.layout = breakout
      ? { rooms: breakout.rooms, ends: breakout.ends ? new Date(breakout.ends) : null, groups: { ...(breakout.groups || {}) } }
      : null;
    clearInterval(this.timer);
    this.timer = 0;
    if (this.layout && this.layout.ends) {
      this.timer = setInterval(() => this.tick(), 1000);
    }
    this.render();
  }

  /** open splits the clients evenly, or opens empty rooms to fill by hand. */
  open(byHand) {
    const rooms = Math.min(MAX_ROOMS, Math.max(1, Math.round(Number(this.rooms.value) || 1)));
    const minutes = Math.max(0, Math.round(Number(this.minutes.value) || 0));
    this.session()?.breakoutOpen(rooms, Math.min(minutes * 60, 4 * 3600), byHand ? {} : null);
  }

  tick() {
    if (this.layout && this.layout.ends) {
      this.left.textContent = `${timeLeft(this.layout.ends)} left`;
    }
  }

  /** render shows the banner, your group's tiles and the therapists' controls. */
  render() {
    const open = !!this.layout;
    const mine = this.group();
    this.banner.hidden = !open;
    if (open) {
      const visiting = this.therapist && mine ? ` (visiting)` : '';
      this.where.textContent = `${roomName(mine)}${visiting}`;
      this.left.textContent = '';
      this.left.hidden = !this.layout.ends;
      this.tick();
    }
    let changed = false;
    for (const el of this.tiles.querySelectorAll('[data-tile]')) {
      const hide = open && this.group(el.dataset.tile) !== mine;
      if (el.hidden !== hide) {
        el.hidden = hide;
        changed = true;
      }
    }
    if (changed) {
      this.relayout();
    }
    if (!this.therapist) {
      return;
    }
    this.setup.hidden = false;
    this.live.hidden = !open;
    this.section.querySelector('[data-breakout-open]').textContent = open ? 'Split again evenly' : 'Split clients evenly';
    this.renderGroups();
  }

  /** renderGroups lists each room with its people, a move menu and a visit button. */
  renderGroups() {
    const people = this.layout ? this.people() : [];
    // Rebuilt only when who is where changes, not on every mute or hand,
    // so that a menu the therapist has open stays open.
    const key = JSON.stringify([this.layout?.rooms, this.group(), people.map((p) => [p.id, p.name, this.group(p.id)])]);
    if (key === this.shown) {
      return;
    }
    this.shown = key;
    if (!this.layout) {
      this.groupsList.replaceChildren();
      return;
    }
    const doc = this.groupsList.ownerDocument;
    const items = [];
    for (let g = 0; g <= this.layout.rooms; g++) {
      const li = doc.createElement('li');
      li.className = 'breakout-group';
      li.dataset.breakoutGroup = String(g);
      const head = doc.createElement('div');
      head.className = 'console-head';
      const h = doc.createElement('h4');
      h.textContent = roomName(g);
      head.append(h);
      if (g !== this.group()) {
        const visit = doc.createElement('button');
        visit.type = 'button';
        visit.className = 'btn btn-small';
        visit.dataset.breakoutVisit = String(g);
        visit.textContent = g ? 'Visit' : 'Return here';
        visit.setAttribute('aria-label', g ? `Visit ${roomName(g).toLowerCase()}` : 'Return to the main room');
        head.append(visit);
      }
      li.append(head);
      const ul = doc.createElement('ul');
      ul.className = 'people';
      for (const p of people.filter((p) => this.group(p.id) === g)) {
        const row = doc.createElement('li');
        row.className = 'person';
        const name = doc.createElement('span');
        name.className = 'person-name';
        name.textContent = p.id === this.you.id ? `${p.name} (you)` : p.name;
        row.append(name);
        if (p.id !== this.you.id) {
          const sel = doc.createElement('select');
          sel.dataset.breakoutMove = p.id;
          sel.setAttribute('aria-label', `Move ${p.name} to`);
          for (let o = 0; o <= this.layout.rooms; o++) {
            const opt = doc.createElement('option');
            opt.value = String(o);
            opt.textContent = roomName(o);
            opt.selected = o === g;
            sel.append(opt);
          }
          row.append(sel);
        }
        ul.append(row);
      }
      li.append(ul);
      items.push(li);
    }
    this.groupsList.replaceChildren(...items);
  }
}
