// encodings.js applies the server's encodings messages (docs/protocol.md):
// the server names, by rid, which simulcast layers of a published video
// someone watches (active) and which nobody does (paused), and the browser
// stops encoding the paused ones. That spares the camera's encoder and the
// home connection's upload; a layer turned active again starts with a
// keyframe.

/**
 * applyEncodings sets the active flag of each encoding of the publish
 * PeerConnection's video sender in media section msg.mid, as msg says. A
 * rid the message does not name is left as it is.
 * @param {RTCPeerConnection} pc the publish PeerConnection
 * @param {{mid: string, active: string[], paused: string[]}} msg
 * @returns {Promise<void>}
 */
export async function applyEncodings(pc, msg) {
  const tr = pc.getTransceivers().find((t) => t.mid === msg.mid);
  const sender = tr?.sender;
  if (!sender || !sender.track) {
    return; // the camera was stopped or replaced meanwhile
  }
  const params = sender.getParameters();
  let changed = false;
  for (const enc of params.encodings || []) {
    const active = (msg.active || []).includes(enc.rid) ? true : (msg.paused || []).includes(enc.rid) ? false : enc.active;
    if (enc.rid && active !== enc.active) {
      enc.active = active;
      changed = true;
    }
  }
  if (changed) {
    await sender.setParameters(params);
  }
}
