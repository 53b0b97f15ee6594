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
//
// The websocket and PeerConnections are connection.js (Connection, which
// Session extends) and peer.js.

import { Connection, LAYER_ID, SCREEN_ID } from './connection.js';

export {
  DISCONNECT_GRACE, LAYER_ID, PING_INTERVAL, SCREEN_ID, signalURL, VERSION,
} from './connection.js';
export { addVideo, SIMULCAST_ENCODINGS } from './peer.js';

/**
 * Session is one participant's connection to a room.
 */
export class Session extends Connection {
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

  /** end ends the session for everyone; therapists only. */
  end() {
    this.send({ type: 'end' });
  }

  /** leave tells the server that you leave, then closes everything. */
  leave() {
    this.send({ type: 'leave' });
    this.finish('left', 1000);
  }
}
