// peer.js is one RTCPeerConnection with its signaling plumbing (Peer), and
// how the camera is published in simulcast (docs/protocol.md, "layer"). No
// DOM or UI code; protocol.js and connection.js use it.

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
export class Peer {
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
