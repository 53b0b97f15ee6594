// api.js is what the pages share besides the signaling protocol: the token
// from the URL fragment, kept for the tab, and the staff HTTP API of
// docs/api.md with the token as a bearer header. Weeks, dates and durations
// in words are in format.js.
//
// The token is only ever sent in the Authorization header: never in a URL,
// never to the console.

/** readFragment returns the parameters of the URL fragment and removes the fragment from the visible URL. */
export function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (location.hash) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  return params;
}

/**
 * tabStore keeps a page's link for this browser tab only (sessionStorage):
 * a reload finds it again, another tab or a closed browser does not. get
 * returns {} when nothing is kept or storage is off.
 */
export function tabStore(name) {
  const key = `iop.${name}`;
  return {
    get() {
      try {
        const v = JSON.parse(sessionStorage.getItem(key) || 'null');
        return v && typeof v === 'object' ? v : {};
      } catch {
        return {};
      }
    },
    set(v) {
      try {
        sessionStorage.setItem(key, JSON.stringify(v));
      } catch {
        // storage is off: a reload asks for the link again
      }
    },
  };
}

/**
 * decodeClaims returns the JWT payload without verifying it (the server
 * verifies), or null when it cannot be read.
 */
export function decodeClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), '='));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** expired reports whether the claims' exp has passed by this device's clock. */
export function expired(claims) {
  return !claims || (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now());
}

/** APIError is a refused or failed API call: status is the HTTP status, code the protocol's error code. */
export class APIError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = 'APIError';
    this.status = status;
    this.code = code;
  }
}

/**
 * apiFetch calls the API with the token as the bearer (and body, if any, as
 * JSON) and returns the response, or throws an APIError for an error status or a network failure.
 */
export async function apiFetch(token, path, { method = 'GET', accept = 'application/json', body = undefined } = {}) {
  let res;
  const headers = { Authorization: `Bearer ${token}`, Accept: accept };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
  } catch {
    throw new APIError(0, 'network', 'The server could not be reached.');
  }
  if (!res.ok) {
    let body = {};
    try {
      body = await res.json();
    } catch {
      // not JSON: the status says enough
    }
    throw new APIError(res.status, body.code || `http_${res.status}`, body.message || res.statusText);
  }
  return res;
}

/** getJSON calls the API and decodes its JSON answer. */
export async function getJSON(token, path, opts) {
  return (await apiFetch(token, path, opts)).json();
}

/** seg encodes one path segment. */
export const seg = (s) => encodeURIComponent(String(s));
