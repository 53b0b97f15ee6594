// connection.js is the machinery under protocol.js's Session: the websocket
// to /v1/signal with its join and pings, the publish and subscribe
// PeerConnections and their offers and answers, remote tracks, a screen
// share's tracks, and the end of the connection (docs/protocol.md). No DOM
// or UI code: a page uses Session (protocol.js), which adds the commands.

import { applyEncodings } from './encodings.js';
import { addVideo, Peer } from './peer.js';

/** The protocol version sent in join. */
export const VERSION = 1;

/** How often a ping keeps the connection alive, in milliseconds. */
export const PING_INTERVAL = 20000;

/** How long a PeerConnection may stay disconnected before the session counts as lost, in milliseconds. */
export const DISCONNECT_GRACE = 5000;

/** The id of layer messages, so that an error answering one can be told apart. */
export const LAYER_ID = 'layer';

/** The id of screen_start messages: an error answering one (screen_off, screen_busy) ends the share before it began. */
export const SCREEN_ID = 'screen';

/** The suffix of the stream id a participant's shared screen arrives in (docs/protocol.md). */
const SCREEN_SUFFIX = '~screen';

/** Server messages that are passed on to listeners as events of their type. */
const forwarded = new Set([
  'waiting', 'waiting_list', 'participant_joined', 'participant_updated',
  'participant_left', 'muted', 'removed', 'ended', 'redirect', 'room_updated', 'turned_away', 'error',
  'chat', 'chat_removed', 'breakout',
]);

/**
 * signalURL returns the websocket URL of the signaling endpoint of the page's
 * own server.
 * @param {Location} loc
 * @returns {string}
 */
export function signalURL(loc) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/v1/signal`;
}

/**
 * Connection is one participant's connection to a room, without the
 * commands: Session (protocol.js) adds them.
 */
export class Connection extends EventTarget {
  /**
   * @param {object} opts
   * @param {string} opts.token the join token (JWT)
   * @param {MediaStream|null} [opts.stream] local camera and microphone; null joins without sending media
   * @param {string} [opts.url] the signaling websocket URL (default: this page's server)
   * @param {string} [opts.room] the room to join, only with a token for any room
   * @param {string} [opts.resume] the resume secret of the last joined, to come
   *   back in after a lost connection without waiting again
   * @param {object|null} [opts.checkin] a client's check-in for this session
   *   ({location, other, private, phone})
   */
  constructor({ token, stream = null, url = signalURL(location), room = '', resume = '', checkin = null }) {
    super();
    this.checkin = checkin;
    this.token = token;
    this.stream = stream;
    this.url = url;
    this.room = room;
    this.resume = resume;
    this.ws = null;
    this.publish = null;
    this.subscribe = null;
    this.pinger = 0;
    this.stall = 0; // the timer of a disconnected PeerConnection
    this.done = false;
    this.you = null;
    this.screen = null; // your share: {stream, transceivers, on}
    this.offering = false; // a publish offer awaits its answer
    this.offerAgain = false; // the published tracks changed meanwhile
    this.config = null; // the PeerConnections' configuration, once joined
  }

  /** connect opens the websocket and joins. */
  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      const join = { type: 'join', v: VERSION, token: this.token, id: 'join' };
      if (this.room) {
        join.room = this.room;
      }
      if (this.resume) {
        join.resume = this.resume;
      }
      if (this.checkin) {
        join.checkin = this.checkin;
      }
      this.send(join);
      this.pinger = setInterval(() => this.send({ type: 'ping', t: Date.now() }), PING_INTERVAL);
    };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => this.finish('lost', e.code);
    ws.onerror = () => {}; // onclose follows and says it all
  }

  /**
   * followScreen publishes your screen once the room says you present, and
   * takes it down once it says you no longer do.
   */
  followScreen(room) {
    const mine = !!this.you && room?.screen?.participant === this.you.id;
    const sc = this.screen;
    if (!sc) {
      return;
    }
    if (mine && !sc.on) {
      sc.on = true;
      const p = this.publisher();
      for (const track of sc.stream.getTracks()) {
        sc.transceivers.push(p.pc.addTransceiver(track, { direction: 'sendonly', streams: [sc.stream] }));
      }
      this.offerPublish();
    } else if (!mine && sc.on) {
      this.endScreen(true);
    }
  }

  /** endScreen takes your screen's tracks out of the publish PeerConnection. */
  endScreen(tell) {
    const sc = this.screen;
    if (!sc) {
      return;
    }
    this.screen = null;
    if (sc.transceivers.length > 0) {
      for (const tc of sc.transceivers) {
        tc.stop();
      }
      this.offerPublish();
    }
    if (tell) {
      this.emit('screen_ended', {});
    }
  }

  /**
   * drop closes the websocket and both PeerConnections without telling the
   * server, as a network failure would; closed follows with reason "lost".
   */
  drop() {
    this.finish('lost', 1006);
  }

  /** send writes one message if the websocket is open. */
  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
    }
  }

  /** emit dispatches an event whose detail is the given object. */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** receive handles one message from the server. */
  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    switch (msg.type) {
      case 'joined':
        this.joined(msg);
        this.followScreen(msg.room);
        break;
      case 'room_updated':
        this.followScreen(msg.room);
        this.emit(msg.type, msg);
        break;
      case 'error':
        if (msg.re === SCREEN_ID && this.screen && !this.screen.on) {
          this.screen = null;
          this.emit('error', msg);
          this.emit('screen_ended', {});
          break;
        }
        this.emit(msg.type, msg);
        break;
      case 'offer':
        this.serverOffer(msg);
        break;
      case 'answer':
        this.serverAnswer(msg);
        break;
      case 'candidate':
        this.peer(msg.pc)?.remoteCandidate(msg.candidate ?? null);
        break;
      case 'encodings':
        if (this.publish) {
          const p = this.publish;
          p.run(() => applyEncodings(p.pc, msg));
        }
        break;
      case 'pong':
        break;
      default:
        if (forwarded.has(msg.type)) {
          this.emit(msg.type, msg);
        }
    }
  }

  /** peer returns the Peer a message's pc field names. */
  peer(name) {
    return name === 'publish' ? this.publish : name === 'subscribe' ? this.subscribe : null;
  }

  /** joined creates both PeerConnections and publishes the local tracks. */
  joined(msg) {
    this.you = msg.you;
    if (!this.subscribe) {
      this.config = { iceServers: msg.ice_servers || [], bundlePolicy: 'max-bundle' };
      this.subscribe = new Peer('subscribe', this.config, (m) => this.send(m), (err) => this.localError(err), (st) => this.peerState(st));
      this.subscribe.pc.ontrack = (e) => this.remoteTrack(e);
      if (this.stream && this.stream.getTracks().length > 0) {
        this.publisher();
        this.startPublishing();
      }
    }
    this.emit('joined', msg);
  }

  /** publisher returns the publish Peer, creating it (a screen share without a camera) when missing. */
  publisher() {
    if (!this.publish) {
      this.publish = new Peer('publish', this.config, (m) => this.send(m), (err) => this.localError(err), (st) => this.peerState(st));
    }
    return this.publish;
  }

  /**
   * offerPublish offers the publish PeerConnection's tracks to the server,
   * one offer at a time: a change while an offer awaits its answer is
   * offered once that answer is applied.
   */
  offerPublish() {
    if (this.offering) {
      this.offerAgain = true;
      return;
    }
    this.offering = true;
    const p = this.publish;
    p.run(async () => {
      await p.pc.setLocalDescription(await p.pc.createOffer());
      this.send({ type: 'offer', pc: 'publish', sdp: p.pc.localDescription.sdp });
    });
  }

  /** startPublishing adds the local tracks (the camera in simulcast) to the publish PC and offers them. */
  startPublishing() {
    const p = this.publish;
    for (const track of this.stream.getTracks()) {
      if (track.kind === 'video') {
        addVideo(p.pc, track, this.stream);
      } else {
        p.pc.addTransceiver(track, { direction: 'sendonly', streams: [this.stream] });
      }
    }
    this.offerPublish();
  }

  /** serverAnswer applies the answer to the publish offer, then offers what changed meanwhile. */
  serverAnswer(msg) {
    if (msg.pc !== 'publish' || !this.publish) {
      return;
    }
    const p = this.publish;
    p.run(async () => {
      try {
        await p.setRemote('answer', msg.sdp);
      } finally {
        this.offering = false;
        if (this.offerAgain) {
          this.offerAgain = false;
          this.offerPublish();
        }
      }
    });
  }

  /** serverOffer answers one of the server's subscribe offers. */
  serverOffer(msg) {
    if (msg.pc !== 'subscribe' || !this.subscribe) {
      return;
    }
    const p = this.subscribe;
    p.run(async () => {
      await p.setRemote('offer', msg.sdp);
      await p.pc.setLocalDescription(await p.pc.createAnswer());
      this.send({ type: 'answer', pc: 'subscribe', sdp: p.pc.localDescription.sdp });
    });
  }

  /**
   * remoteTrack reports a track; its stream id is the publisher's
   * participant id, with SCREEN_SUFFIX for their shared screen.
   */
  remoteTrack(e) {
    const stream = e.streams[0];
    if (!stream) {
      return; // without a stream id nobody knows whose track this is
    }
    const screen = stream.id.endsWith(SCREEN_SUFFIX);
    const participantId = screen ? stream.id.slice(0, -SCREEN_SUFFIX.length) : stream.id;
    this.emit('track', { participantId, stream, track: e.track, screen });
  }

  /**
   * peerState counts the session as lost when a PeerConnection failed, or
   * stayed disconnected for DISCONNECT_GRACE (it may come back by itself).
   */
  peerState(st) {
    if (st === 'failed') {
      this.finish('lost', 1006);
    } else if (st === 'disconnected' && !this.stall) {
      this.stall = setTimeout(() => {
        this.stall = 0;
        const states = [this.publish, this.subscribe].filter(Boolean).map((p) => p.pc.connectionState);
        if (states.some((x) => x === 'disconnected' || x === 'failed')) {
          this.finish('lost', 1006);
        }
      }, DISCONNECT_GRACE);
    }
  }

  /** localError reports a browser-side WebRTC failure as an error event. */
  localError(err) {
    if (this.done) {
      return; // a PeerConnection closed under a pending operation
    }
    this.emit('error', { code: 'webrtc', message: String(err && err.message ? err.message : err) });
  }

  /** finish closes everything once and emits closed. */
  finish(reason, code) {
    if (this.done) {
      return;
    }
    this.done = true;
    clearInterval(this.pinger);
    clearTimeout(this.stall);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      if (this.ws.readyState <= WebSocket.OPEN) {
        // A normal closure (1000) means leaving to the server; 4000 keeps the
        // seat for the grace period, as a dropped connection does.
        this.ws.close(reason === 'left' ? 1000 : 4000);
      }
    }
    this.publish?.close();
    this.subscribe?.close();
    if (this.screen) {
      this.screen = null;
      this.emit('screen_ended', {});
    }
    this.emit('closed', { reason, code });
  }
}
