// linkquality.js: is this browser's network link too weak for video? No
// UI. It judges from what the browser measures on its own connection to
// the server (getStats): packet loss both ways, the round-trip time of the
// ICE candidate pair in use, and the upload bandwidth the browser's
// congestion control estimates.
//
// It ignores what busy computers produce as well: late or dropped frames,
// a low receive rate (the server sends small video layers to small
// tiles), and loss of incoming packets on its own. Measured in a 4-person
// call of four Chromium pages and iopd on one 2-core machine, up to 15% of
// the incoming and 12% of the outgoing packets were lost (dropped by the
// overloaded server and the starved pages), and under a heavier load the
// upload estimate fell to 77 kbps, while the round trip of the ICE checks
// stayed at 4-55 ms. So loss and a low upload estimate count only with a
// strained round trip (a congested or failing network queues before it
// drops), and a long round trip counts by itself. A lossy link that shows
// no delay at all goes unflagged: telling a busy laptop its network is weak
// would be the worse mistake, and audio only stays one click away.

/** How long the link must stay weak before it counts, in milliseconds. */
export const WEAK_WINDOW = 8000;

/** A round-trip time to the server above this, in seconds, throughout the window, is weak. */
export const WEAK_RTT = 0.5;

/** More than this share of packets lost over the window, either way, is weak (with a strained round trip)... */
export const WEAK_LOSS = 0.08;

/** ...once at least this many packets were sent or received in that direction. */
export const WEAK_MIN_PACKETS = 200;

/** An estimated upload below this, in bits per second, throughout the window, is weak (with a strained round trip). */
export const WEAK_UPLINK = 150000;

/** Loss and a low upload estimate count with a round trip above STRAINED_RTT seconds throughout the window. */
export const STRAINED_RTT = 0.15;

/**
 * measure reads one sample from the statistics of the subscribe
 * PeerConnection (down) and, when there is one, the publish one (up):
 * {t, rtt, downLost, downReceived, upLost, upSent, uplink}. Values the
 * browser does not report are undefined.
 * @param {number} t time of the sample, ms
 * @param {RTCStatsReport} down
 * @param {RTCStatsReport|null} up
 */
export function measure(t, down, up) {
  const s = { t, rtt: undefined, downLost: 0, downReceived: 0, upLost: 0, upSent: 0, uplink: undefined };
  const rtts = [];
  for (const report of [down, up]) {
    if (!report) {
      continue;
    }
    report.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) {
        const pair = report.get(r.selectedCandidatePairId);
        if (pair && typeof pair.currentRoundTripTime === 'number') {
          rtts.push(pair.currentRoundTripTime);
        }
        if (report === up && pair && typeof pair.availableOutgoingBitrate === 'number') {
          s.uplink = pair.availableOutgoingBitrate;
        }
      }
    });
  }
  if (rtts.length) {
    s.rtt = Math.min(...rtts);
  }
  down?.forEach((r) => {
    if (r.type === 'inbound-rtp') {
      s.downLost += Math.max(0, r.packetsLost || 0);
      s.downReceived += r.packetsReceived || 0;
    }
  });
  up?.forEach((r) => {
    if (r.type === 'outbound-rtp') {
      s.upSent += r.packetsSent || 0;
    } else if (r.type === 'remote-inbound-rtp') {
      s.upLost += Math.max(0, r.packetsLost || 0);
    }
  });
  return s;
}

/**
 * judge says whether the samples (oldest first) show a weak link over the
 * last WEAK_WINDOW ms: {weak, why} with why 'rtt', 'loss' or 'uplink'.
 * Fewer samples than the window covers are never weak.
 */
export function judge(samples) {
  const last = samples[samples.length - 1];
  const window = samples.filter((s) => last && last.t - s.t <= WEAK_WINDOW);
  const first = window[0];
  if (!first || last.t - first.t < WEAK_WINDOW * 0.75) {
    return { weak: false, why: '' };
  }
  if (window.every((s) => typeof s.rtt === 'number' && s.rtt > WEAK_RTT)) {
    return { weak: true, why: 'rtt' };
  }
  const ratio = (lost, all) => (all >= WEAK_MIN_PACKETS ? lost / all : 0);
  const downLost = last.downLost - first.downLost;
  const down = ratio(downLost, downLost + last.downReceived - first.downReceived);
  const up = ratio(last.upLost - first.upLost, last.upSent - first.upSent);
  const seen = { down, up, rtt: last.rtt, uplink: last.uplink };
  const strained = window.every((s) => typeof s.rtt === 'number' && s.rtt > STRAINED_RTT);
  if (strained && Math.max(down, up) > WEAK_LOSS) {
    return { weak: true, why: 'loss', ...seen };
  }
  if (strained && window.every((s) => typeof s.uplink === 'number' && s.uplink < WEAK_UPLINK)) {
    return { weak: true, why: 'uplink', ...seen };
  }
  return { weak: false, why: '', ...seen };
}
