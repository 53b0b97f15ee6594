// chat.js is the session's chat panel: messages to the room or, privately,
// to its therapists. Text is shown as text (textContent), never as HTML.
// Nothing is kept: the panel forgets everything when the session ends, and
// the server keeps nothing either.

const MAX_CHARS = 1000;

/**
 * Chat drives the panel under root: the message list, the form, the
 * therapist's "chat off" switch, and the unread count on the Chat button.
 */
export class Chat {
  /**
   * @param {HTMLElement} root the panel ([data-chat])
   * @param {HTMLButtonElement} toggle the Chat button of the call controls
   * @param {object} opts
   * @param {(text: string, priv: boolean) => void} opts.send sends a message
   * @param {(id: string) => void} opts.remove asks the server to remove a message for everyone
   * @param {(on: boolean) => void} opts.enable turns chat on or off for clients and family
   * @param {(text: string) => void} opts.announce says something to screen readers
   */
  constructor(root, toggle, { send, remove, enable, announce }) {
    this.root = root;
    this.toggleButton = toggle;
    this.list = root.querySelector('[data-chat-list]');
    this.form = root.querySelector('[data-chat-form]');
    this.input = root.querySelector('[data-chat-text]');
    this.private = root.querySelector('[data-chat-private]');
    this.state = root.querySelector('[data-chat-state]');
    this.switch = root.querySelector('[data-chat-switch]');
    this.send = send;
    this.removeFn = remove;
    this.enable = enable;
    this.announce = announce;
    this.therapist = false;
    this.enabled = true;
    this.unread = 0;
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.submit();
      }
    });
    this.switch.addEventListener('click', () => this.enable(!this.enabled));
    toggle.addEventListener('click', () => this.show(this.root.hidden));
  }

  /** start readies the panel for a session you were just admitted to;
   * keep holds on to the messages of this page after a reconnection. */
  start({ therapist, enabled, keep = false }) {
    this.therapist = therapist;
    if (!keep) {
      this.list.replaceChildren();
      this.unread = 0;
    }
    this.toggleButton.hidden = false;
    this.private.closest('label').hidden = therapist;
    this.switch.hidden = !therapist;
    this.setEnabled(enabled !== false);
    this.badge();
  }

  /** stop forgets every message and hides the panel (the session ended). */
  stop() {
    this.list.replaceChildren();
    this.root.hidden = true;
    this.toggleButton.hidden = true;
    this.toggleButton.setAttribute('aria-pressed', 'false');
    this.unread = 0;
    this.badge();
  }

  /** show opens or closes the panel. */
  show(open) {
    this.root.hidden = !open;
    this.toggleButton.setAttribute('aria-pressed', String(open));
    if (open) {
      this.unread = 0;
      this.badge();
      this.input.focus();
    }
  }

  /** setEnabled follows room.chat: whether clients and family may write. */
  setEnabled(on) {
    this.enabled = on;
    const mayWrite = on || this.therapist;
    this.input.disabled = !mayWrite;
    this.form.querySelector('button[type="submit"]').disabled = !mayWrite;
    this.state.textContent = on ? '' : (this.therapist
      ? 'Chat is off for clients and family.'
      : 'Your therapist has turned chat off for now.');
    this.state.hidden = !this.state.textContent;
    this.switch.textContent = on ? 'Turn chat off for clients' : 'Turn chat on for clients';
    this.switch.setAttribute('aria-pressed', String(!on));
  }

  /** add shows a message the server relayed. */
  add(msg) {
    const li = document.createElement('li');
    li.className = 'chat-message' + (msg.private ? ' chat-private' : '');
    li.dataset.messageId = msg.message_id;
    const head = document.createElement('span');
    head.className = 'chat-from';
    head.textContent = (msg.from?.name || 'Someone') + (msg.private ? ' (to the therapists)' : '');
    const text = document.createElement('p');
    text.className = 'chat-text';
    text.textContent = msg.text;
    li.append(head, text);
    if (this.therapist) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'btn btn-small chat-remove';
      b.textContent = 'Remove';
      b.setAttribute('aria-label', `Remove this message from ${msg.from?.name || 'someone'} for everyone`);
      b.addEventListener('click', () => this.removeFn(msg.message_id));
      li.append(b);
    }
    this.list.append(li);
    li.scrollIntoView({ block: 'end' });
    if (this.root.hidden) {
      this.unread += 1;
      this.badge();
      this.announce(`New message from ${msg.from?.name || 'someone'}.`);
    }
  }

  /** remove takes a message off the list (a therapist removed it). */
  remove(id) {
    const li = [...this.list.children].find((x) => x.dataset.messageId === id);
    if (li) {
      li.querySelector('.chat-text').textContent = 'This message was removed.';
      li.classList.add('chat-removed');
      li.querySelector('.chat-remove')?.remove();
    }
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) {
      return;
    }
    if (text.length > MAX_CHARS) {
      this.announce(`Messages are at most ${MAX_CHARS} characters.`);
      return;
    }
    this.send(text, !this.therapist && this.private.checked);
    this.input.value = '';
  }

  badge() {
    this.toggleButton.textContent = this.unread ? `Chat (${this.unread} new)` : 'Chat';
  }
}
