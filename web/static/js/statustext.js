// statustext.js is the join page's words for what happens to a join: what
// each server error code (docs/protocol.md, "Error codes") and each link
// check outcome (docs/api.md, GET /v1/link) means for the person, the
// closing messages, and the connection check's outcomes. The words are for
// people in recovery, often on a phone and under stress: plain, kind, and
// never blaming.

import { dayText, minutesWords, sessionName, timeText, validDate, whenText } from './format.js';
import { telehealthErrors } from './checkin.js';
import { joiningRoom } from './joinstate.js';

/** What each server error code means for the person, and whether trying again can help. */
const errorMessages = {
  unauthorized: {
    title: 'This join link does not work',
    text: 'It may have expired or already been used, or part of it may be missing. Please ask your program for a new link.',
  },
  forbidden: {
    title: 'This link cannot be used for this session',
    text: 'Please contact your program. They will help you find the right link.',
  },
  room_full: {
    title: 'This session is full',
    text: 'All the places in this session are taken right now. Please contact your therapist or program, and they will help you.',
    retry: true,
  },
  locked: {
    title: 'This session is closed to new arrivals',
    text: 'Your therapist has closed the session to new people for now. If you think you should be there, please contact them.',
    retry: true,
  },
  removed: {
    title: 'You cannot rejoin this session',
    text: 'You were taken out of this session earlier, so it cannot be joined again. Please contact your therapist or program about your next session.',
  },
  not_enrolled: {
    title: 'This session is not on your schedule',
    text: 'Your link is not set up for this session. Please contact your program, and they will help you find your sessions.',
  },
  wrong_track: {
    title: 'This session is for another group',
    text: 'It belongs to another track of your program, so it cannot be joined with this link. If you think this is a mistake, please contact your program.',
  },
  too_early: {
    title: 'It is a little early to join',
    text: 'The session opens shortly before it starts. Please come back then.',
    retry: true,
  },
  too_late: {
    title: 'This session is no longer open',
    text: 'It has ended, or the time to join has passed.',
  },
  cancelled: {
    title: 'This session is not meeting',
    text: 'It was cancelled, or falls on a holiday. Your therapist or program can tell you more.',
  },
  ended: {
    title: 'This session has ended',
    text: 'Your therapist has ended this session. Thank you for being here. Your program can tell you when your next session is.',
    retry: true,
    retryLabel: 'Check again',
  },
  replaced: {
    title: 'This session is open in another window',
    text: 'You joined from another window or device, so this one was closed. Use the other one, or join again here.',
    retry: true,
    retryLabel: 'Join here instead',
  },
  moved: {
    title: 'You joined another session',
    text: 'You can be in one session at a time, so this one was closed when you joined the other. Use the other one, or join again here.',
    retry: true,
    retryLabel: 'Join here instead',
  },
  too_many_connections: {
    title: 'Too many connections from your network',
    text: 'Please wait a minute, then try again. If it keeps happening, tell your program.',
    retry: true,
  },
  too_many_joins: {
    title: 'Too many tries at once',
    text: 'Please wait a few seconds, then try again.',
    retry: true,
  },
  ...telehealthErrors,
  node_full: {
    title: 'The service is busy right now',
    text: 'Please wait a minute, then try again. If it keeps happening, tell your program.',
    retry: true,
  },
};

/**
 * What the link check (GET /v1/link) says about a link that cannot be used,
 * shown before the camera turns on. Each refusal has its own words.
 */
export const linkMessages = {
  invalid: {
    title: 'This join link does not work',
    text: 'Part of it may be missing or changed. Open the link exactly as your program sent it, for example by clicking it in the email or text message. If it still does not work, ask your program for a new link.',
  },
  expired: {
    title: 'This join link has expired',
    text: 'Join links work for a limited time. Please ask your therapist or program for a new link.',
  },
  not_yet_valid: {
    title: 'This link is not active yet',
    text: 'It starts working closer to your session. Please open it again later.',
    retry: true,
    retryLabel: 'Check again',
  },
  used: {
    title: 'This invitation has already been used',
    text: 'Each invitation works once. Please ask the therapist for a new one.',
  },
  removed: errorMessages.removed,
  blocked: {
    title: 'Your access is paused',
    text: 'Your program has paused access to sessions for now. Please contact them; they will help you.',
  },
  ended: errorMessages.ended,
};

/** The message for an error code nobody expects a person to understand. */
export const genericError = {
  title: 'Something went wrong',
  text: 'We could not connect you to the session. Please try again in a moment.',
  retry: true,
};

/** The closing message when the therapist ends the session. */
export const endedMessage = {
  title: 'The session has ended',
  text: 'Thank you for being here today. You can close this page now.',
};

/** What follows every message about being taken out of a session. */
export const supportText = 'If you have questions or need support, please contact your therapist or program.';

/** Server errors that close the connection even after joining (docs/protocol.md, "Error codes"). */
export const closingCodes = new Set(['too_large', 'join_timeout', 'rate_limited', 'replaced', 'moved', 'too_many_connections', 'too_many_joins']);

/** What to say when something the person did in the session was refused. */
export const actionErrors = {
  not_found: 'That person has already left, or is no longer waiting.',
  forbidden: 'Only the host of this session can do that.',
  not_admitted: 'You can do that once you are in the session.',
  webrtc: 'There was a problem with the video connection.',
};

/** How roles are named to the person. */
export const roleNames = {
  therapist: 'therapist',
  client: 'client',
  family: 'family member',
  staff: 'staff',
};

/**
 * nextText says when someone's next session is:
 * "Your next session: Relapse prevention, Monday at 9:00 AM. It opens at 8:50 AM."
 */
function nextText(next) {
  const start = validDate(next.start);
  if (!start) {
    return '';
  }
  let text = `Your next session: ${sessionName(next)}, ${dayText(start)} at ${timeText(start)}.`;
  const opens = validDate(next.join_opens);
  if (opens && opens > Date.now() && opens < start) {
    text += ` You can join from ${timeText(opens)}.`;
  }
  return text;
}

/**
 * errorMessage returns what to tell the person about a server error. A
 * refusal of a scheduled session carries next, the person's next session
 * (docs/protocol.md: room, title, kind, start, end, start_local, join_opens,
 * time_zone), which the message names in their own time zone.
 */
export function errorMessage({ code, next }) {
  const m = errorMessages[code] || genericError;
  next = next && typeof next === 'object' && validDate(next.start) ? next : null;
  if (!next) {
    return m;
  }
  if (code === 'too_early' && next.room === joiningRoom()) {
    const opens = validDate(next.join_opens);
    if (opens) {
      const lead = Math.round((validDate(next.start) - opens) / 60000);
      const before = lead > 0 ? ` (${minutesWords(lead)} before it starts)` : '';
      const soon = opens - Date.now() < 3 * 3600 * 1000;
      return {
        ...m,
        title: soon ? m.title : 'This session is not open yet',
        text: `This session opens ${whenText(opens)}${before}. Please come back then.`,
      };
    }
  }
  if (code === 'too_early') {
    return { ...m, title: 'This session is not open yet', text: 'It opens shortly before it starts.', next: nextText(next), retry: false };
  }
  return { ...m, next: nextText(next) };
}

/** Why the console says someone was turned away at the door. */
export const turnedAwayWords = {
  locked: 'the room is locked',
  room_full: 'the session is full',
};

/** What the connection check says, in plain words, per outcome (connectivity.js). */
export const connectivityWords = {
  checking: 'Checking whether video calls work on this network…',
  udp: 'Ready. Video calls work well on this network.',
  tcp: 'Ready. Your network blocks part of what video calls use, but a direct connection works. Video may lag a little.',
  relay: 'Connected through a relay; video may be slower.',
  blocked: 'Your network blocks video calls. Ask your program for the phone option, or try another network, such as your phone’s mobile data.',
  error: 'We could not check your connection. You can still try to join.',
};
