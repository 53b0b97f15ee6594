// connectivity.js: the join page's connection check, without UI. Before
// the person joins, it asks the server which network paths to try
// (GET /v1/connectivity, with the join token), then connects a data
// channel to the server over each: straight over UDP, straight over TCP,
// and through the TURN relay. The page turns the outcome into plain words.

/** How long one path may take to connect before it counts as blocked, in milliseconds. */
export const PATH_TIMEOUT = 8000;

/** How long the browser gathers its candidates for one path, in milliseconds. */
const GATHER_TIMEOUT = 4000;

/**
 * Outcomes of the whole check, best first:
 *   udp     a direct connection works: the best case
 *   tcp     only a direct TCP connection works (UDP is blocked)
 *   relay   only the relay works: video may be slower
 *   blocked nothing works: video calls are blocked on this network
 *   error   the check itself could not run (server unreachable, token refused)
 */
export const OUTCOMES = ['udp', 'tcp', 'relay', 'blocked', 'error'];

/**
 * checkConnectivity runs the check and resolves to
 * {outcome, paths: {udp, tcp, relay}} where each path is 'ok', 'blocked'
 * or 'untested' (the server does not offer it).
 * @param {string} token the join token
 * @param {string} [base] the server's origin ('' for this page's)
 */
export async function checkConnectivity(token, base = '') {
  const headers = { Authorization: `Bearer ${token}` };
  let info;
  try {
    const res = await fetch(`${base}/v1/connectivity`, { headers, cache: 'no-store' });
    if (!res.ok) {
      return { outcome: 'error', paths: {}, status: res.status };
    }
    info = await res.json();
  } catch {
    return { outcome: 'error', paths: {} };
  }
  const offered = new Set(info.transports || []);
  const paths = { udp: 'untested', tcp: 'untested', relay: 'untested' };
  await Promise.all(Object.keys(paths).filter((t) => offered.has(t)).map(async (t) => {
    paths[t] = (await tryPath(t, info.ice_servers || [], headers, base)) ? 'ok' : 'blocked';
  }));
  return { outcome: outcomeOf(paths), paths };
}

/** outcomeOf names the best path that worked. */
export function outcomeOf(paths) {
  for (const t of ['udp', 'tcp', 'relay']) {
    if (paths[t] === 'ok') {
      return t;
    }
  }
  return Object.values(paths).some((p) => p === 'blocked') ? 'blocked' : 'error';
}

/**
 * tryPath connects a data channel to the server over one path and
 * resolves to whether it connected within PATH_TIMEOUT.
 */
async function tryPath(transport, iceServers, headers, base) {
  const relay = transport === 'relay';
  const pc = new RTCPeerConnection({
    iceServers: relay ? iceServers : [],
    iceTransportPolicy: relay ? 'relay' : 'all',
  });
  try {
    pc.createDataChannel('check');
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const res = await fetch(`${base}/v1/connectivity`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ transport, sdp: pc.localDescription.sdp }),
    });
    if (!res.ok) {
      return false;
    }
    const { sdp } = await res.json();
    await pc.setRemoteDescription({ type: 'answer', sdp });
    return await connected(pc);
  } catch {
    return false;
  } finally {
    pc.close();
  }
}

/** gathered resolves once the browser has gathered its candidates, or after GATHER_TIMEOUT. */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** connected resolves true once the PeerConnection connects, false when it fails or times out. */
function connected(pc) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), PATH_TIMEOUT);
    const watch = () => {
      if (pc.connectionState === 'connected') {
        clearTimeout(timer);
        resolve(true);
      } else if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
        clearTimeout(timer);
        resolve(false);
      }
    };
    pc.addEventListener('connectionstatechange', watch);
    watch();
  });
}
