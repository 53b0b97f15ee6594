// protocol.js speaks the iop signaling protocol, version 1 (docs/protocol.md):
// one websocket to /v1/signal, a publish RTCPeerConnection that carries the
// local camera and microphone to the server, and a subscribe
// RTCPeerConnection on which the server offers everyone else's tracks.
//
// It has no DOM or UI code. A page creates a Session, listens for its events
// and calls its methods:
//
//   const s = new Session({ token, stream });
//   s.addEventListener('track', (e) => show(e.detail.participantId, e.detail.stream));
//   s.connect();
//
// Every event is a CustomEvent whose detail is described below:
//
//   joined              the server's joined message: {you, room, participants, ice_servers, resume}
//   waiting             {room, position}: a therapist must admit you first
//   waiting_list        {waiting: [{id, name, role}]}, to therapists
//   participant_joined  {participant: {id, name, role, audio, video, hand}}
//   participant_updated {participant: {...}}
//   participant_left    {id, reason}
//   track               {participantId, stream, track, screen}: a remote track arrived;
//                       stream carries all of that participant's camera and
//                       microphone tracks, or (screen true) their shared screen
//   screen_ended        {}: your screen share ended (you stopped it, another
//                       took over, or a therapist stopped it): stop the capture
//   muted               {kind, by}: a therapist muted you
//   room_updated        {room: {id, kind, title, locked}}: the lock state changed
//   turned_away         {participant: {id, name, role}, reason}, to therapists:
//                       someone was refused because the room is locked ("locked")
//                       or full ("room_full")
//   removed             {reason}
//   ended               {}: the therapist ended the session
//   redirect            {url}: the room lives on another node
//   error               {code, message, re}: the server refused something
//   closed              {reason, code}: the session is over; reason is "left"
//                       (leave() was called) or "lost" (the websocket ended, or
//                       a PeerConnection failed or stayed disconnected for
//                       DISCONNECT_GRACE); after "lost" a page may join again
//                       with the same token within the server's 60 s grace,
//                       which keeps the seat (docs/protocol.md, 4.8)

import { applyEncodings } from './encodings.js';

/** The protocol version sent in join. */
export const VERSION = 1;

/** How often a ping keeps the connection alive, in milliseconds. */
export const PING_INTERVAL = 20000;

/** How long a PeerConnection may stay disconnected before the session counts as lost, in milliseconds. */
export const DISCONNECT_GRACE = 5000;

/**
 * The simulcast layers the camera is published in: a quarter, a half and the
 * full resolution, with the rids the server knows (docs/protocol.md, layer).
 * A 1280x720 camera sends 320x180, 640x360 and 1280x720.
 */
export const SIMULCAST_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1500000 },
];

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
 * addVideo adds a camera track to a publish PeerConnection in the three
 * SIMULCAST_ENCODINGS, or in one encoding when the browser refuses
 * simulcast. A camera too small for three layers gets fewer from the
 * browser itself.
 * @param {RTCPeerConnection} pc
 * @param {MediaStreamTrack} track
 * @param {MediaStream} stream
 * @returns {RTCRtpTransceiver}
 */
export function addVideo(pc, track, stream) {
  try {
    const sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
    return pc.addTransceiver(track, { direction: 'sendonly', streams: [stream], sendEncodings });
  } catch {
    return pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
  }
}

/**
 * Peer is one RTCPeerConnection with its signaling plumbing: operations run
 * one at a time in arrival order, and remote candidates wait until the remote
 * description is set.
 */
class Peer {
  /**
   * @param {string} name "publish" or "subscribe", the pc field of messages
   * @param {RTCConfiguration} config
   * @param {(msg: object) => void} send sends a message to the server
   * @param {(err: Error) => void} fail reports a local failure
   * @param {(state: string) => void} [onState] follows the connectionState
   */
  constructor(name, config, send, fail, onState = () => {}) {
    this.name = name;
    this.send = send;
    this.fail = fail;
    this.pc = new RTCPeerConnection(config);
    this.pending = [];
    this.queue = Promise.resolve();
    this.pc.onicecandidate = (e) => this.localCandidate(e.candidate);
    this.pc.onconnectionstatechange = () => onState(this.pc.connectionState);
  }

  /**
   * run queues an operation after the ones before it; a failure is reported
   * and does not stop later operations.
   * @param {() => Promise<void>} op
   */
  run(op) {
    this.queue = this.queue.then(op).catch((err) => this.fail(err));
  }

  /** localCandidate sends a gathered candidate; null ends gathering. */
  localCandidate(cand) {
    if (cand && !cand.candidate) {
      return; // an empty per-section end marker; the null at the end says it all
    }
    this.send({ type: 'candidate', pc: this.name, candidate: cand ? cand.toJSON() : null });
  }

  /** remoteCandidate adds the server's candidate, or holds it until the remote description is set. */
  remoteCandidate(cand) {
    this.run(async () => {
      if (!this.pc.remoteDescription) {
        this.pending.push(cand);
        return;
      }
      await this.addCandidate(cand);
    });
  }

  /** addCandidate adds one remote candidate; null is the end of candidates. */
  async addCandidate(cand) {
    if (cand === null) {
      // The end of candidates is a hint; browsers that refuse it lose nothing.
      await this.pc.addIceCandidate().catch(() => {});
      return;
    }
    await this.pc.addIceCandidate(cand);
  }

  /** setRemote applies a remote description, then the candidates that waited for it. */
  async setRemote(type, sdp) {
    await this.pc.setRemoteDescription({ type, sdp });
    const waiting = this.pending;
    this.pending = [];
    for (const cand of waiting) {
      await this.addCandidate(cand);
    }
  }

  close() {
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }
}

/**
 * Session is one participant's connection to a room.
 */
export class Session extends EventTarget {
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
   * setMedia sets the local microphone and camera on or off and tells the room.
   * @param {boolean} audio
   * @param {boolean} video
   */
  setMedia(audio, video) {
    for (const t of this.stream ? this.stream.getAudioTracks() : []) {
      t.enabled = audio;
    }
    for (const t of this.stream ? this.stream.getVideoTracks() : []) {
      t.enabled = video;
    }
    this.send({ type: 'media', audio, video });
  }

  /**
   * setLayer asks for the simulcast layer of a participant's video that
   * fits where it is shown: "low", "medium" or "high". The server keeps it
   * for that participant's current video track only; ask again when a new
   * one arrives. An error answering it carries re LAYER_ID.
   * @param {string} participant
   * @param {string} quality
   */
  setLayer(participant, quality) {
    this.send({ type: 'layer', participant, quality, id: LAYER_ID });
  }

  /**
   * raiseHand raises or lowers your hand.
   * @param {boolean} raised
   */
  raiseHand(raised) {
    this.send({ type: 'hand', raised });
  }

  /** admit lets a waiting participant in ("*" for everyone); therapists only. */
  admit(participant) {
    this.send({ type: 'admit', participant });
  }

  /** deny turns a waiting participant away; therapists only. */
  deny(participant) {
    this.send({ type: 'deny', participant });
  }

  /**
   * mute turns off a participant's microphone ("audio") or camera ("video");
   * therapists only. The participant may turn it back on.
   */
  mute(participant, kind) {
    this.send({ type: 'mute', participant, kind });
  }

  /** remove takes a participant out of the session with a reason they see; therapists only. */
  remove(participant, reason) {
    this.send({ type: 'remove', participant, reason });
  }

  /** lock stops (true) or allows (false) new clients and family joining; therapists only. */
  lock(locked) {
    this.send({ type: 'lock', locked });
  }

  /** autoAdmit (a therapist) lets people in without one-by-one admission, or not. */
  autoAdmit(on) {
    this.send({ type: 'auto_admit', auto_admit: on });
  }

  /** chat sends a message to the room, or privately to its therapists. */
  chat(text, priv = false) {
    this.send({ type: 'chat', text, private: priv });
  }

  /** removeChat (a therapist) takes a message off everyone's screen. */
  removeChat(id) {
    this.send({ type: 'chat_remove', message_id: id });
  }

  /** enableChat (a therapist) turns chat on or off for clients and family. */
  enableChat(on) {
    this.send({ type: 'chat_enabled', chat_enabled: on });
  }

  /**
   * breakoutOpen (a therapist) splits the room into rooms breakout rooms:
   * the clients evenly, or with assign ({participant id: room}) by hand;
   * seconds, if not 0, is the timer that brings everyone back.
   */
  breakoutOpen(rooms, seconds = 0, assign = null) {
    const msg = { type: 'breakout_open', rooms };
    if (seconds > 0) {
      msg.seconds = seconds;
    }
    if (assign) {
      msg.assign = assign;
    }
    this.send(msg);
  }

  /** breakoutMove (a therapist) moves a participant to breakout group (0: main room). */
  breakoutMove(participant, group) {
    this.send({ type: 'breakout_move', participant, group });
  }

  /** breakoutVisit (a therapist) goes to breakout group themself (0: back to the main room). */
  breakoutVisit(group) {
    this.send({ type: 'breakout_visit', group });
  }

  /** breakoutClose (a therapist) brings everyone back to the main room. */
  breakoutClose() {
    this.send({ type: 'breakout_close' });
  }

  /** host (the host, or a therapist while the host is away) makes another therapist the host. */
  host(participant) {
    this.send({ type: 'host', participant });
  }

  /**
   * shareScreen asks to share the screen captured in stream (from
   * getDisplayMedia). Its tracks are published once the room names you its
   * presenter; an error with re SCREEN_ID (screen_off, screen_busy) means
   * it was refused, and screen_ended follows.
   * @param {MediaStream} stream
   */
  shareScreen(stream) {
    this.endScreen(false);
    this.screen = { stream, transceivers: [], on: false };
    this.send({ type: 'screen_start', stream: stream.id, id: SCREEN_ID });
  }

  /** stopScreen ends your share, or (a therapist, participant set) another's. */
  stopScreen(participant = '') {
    if (participant) {
      this.send({ type: 'screen_stop', participant });
      return;
    }
    if (this.screen) {
      this.send({ type: 'screen_stop' });
      this.endScreen(true);
    }
  }

  /** allowScreen (a therapist) lets clients and family share their screen, or not. */
  allowScreen(on) {
    this.send({ type: 'screen_allowed', screen_allowed: on });
  }

  /** spotlight (a therapist) shows a participant large for everyone; '' ends it. */
  spotlight(participant) {
    this.send({ type: 'spotlight', participant });
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

  /** end ends the session for everyone; therapists only. */
  end() {
    this.send({ type: 'end' });
  }

  /**
   * drop closes the websocket and both PeerConnections without telling the
   * server, as a network failure would; closed follows with reason "lost".
   */
  drop() {
    this.finish('lost', 1006);
  }

  /** leave tells the server that you leave, then closes everything. */
  leave() {
    this.send({ type: 'leave' });
    this.finish('left', 1000);
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
