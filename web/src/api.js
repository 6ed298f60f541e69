// api.js: the one way the pages talk to the API.
//
// The access token lives in this module's memory only; the refresh token is
// the HttpOnly cookie pl_refresh (Path=/api/accounts/), which page scripts
// never see. A request answered 401 refreshes the access token once (one
// refresh at a time, shared by every caller: a refresh token is single-use)
// and is retried; when the refresh is refused the session is over and the
// app is told why (onSessionEnded), which sends every open tab to the login
// page with that reason. A network failure is never a refusal: it is an
// ApiError with status 0 (code network_error), the connection store hears of
// it, and the session stays.
//
// A stranger's first load must not call refresh (a 401 in the console for
// nothing): a flag in localStorage, "pl.session" = "1", says this browser
// logged in; it is no secret (the cookie is the credential) and goes at
// logout or when the session ends.
import { reportAnswer, reportNetworkFailure } from './lib/connection.js';

const HINT = 'pl.session';
let accessToken = null;
let refreshing = null;
let sessionEnded = () => {};

/** An API error: the HTTP status, the server's {code, message, field}, Retry-After in seconds. */
export class ApiError extends Error {
  constructor(status, code, message, field, retryAfter) {
    super(message || `Request failed (${status})`);
    this.status = status;
    this.code = code || (status === 0 ? 'network_error' : 'error');
    this.field = field || null;
    this.retryAfter = retryAfter || null;
  }
}

/** fn(reason) when the session ends: 'disabled', 'revoked', 'ended', 'elsewhere'. */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

export function setAccessToken(token) {
  accessToken = token;
}

export function hasSessionHint() {
  try {
    return window.localStorage.getItem(HINT) === '1';
  } catch {
    return true; // storage blocked: ask the cookie
  }
}

export function setSessionHint(on) {
  try {
    if (on) window.localStorage.setItem(HINT, '1');
    else window.localStorage.removeItem(HINT);
  } catch {
    /* storage blocked: the app only asks for refresh more often */
  }
}

/** The claims of the access token in memory (role, sid, email_verified), or null. */
export function tokenClaims() {
  if (!accessToken) return null;
  try {
    const part = accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toError(res, body) {
  const e = body && body.error ? body.error : {};
  const ra = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, e.code, e.message, e.field, Number.isFinite(ra) && ra > 0 ? ra : null);
}

async function send(method, path, body, headers, signal) {
  const h = { Accept: 'application/json', ...headers };
  if (accessToken) h.Authorization = `Bearer ${accessToken}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal,
    });
  } catch (err) {
    if (signal && signal.aborted) throw err;
    reportNetworkFailure();
    throw new ApiError(0, 'network_error', 'The server cannot be reached.');
  }
  reportAnswer();
  return res;
}

const END_REASON = { account_disabled: 'disabled', refresh_token_reused: 'revoked' };

/**
 * Exchanges the refresh cookie for a new access token (cookie-only POST, no
 * body). Resolves to the login answer ({access_token, user, ...}), or null
 * when the session is over (reason in .reason of the thrown-away answer), and
 * throws an ApiError with status 0 when the server cannot be reached.
 * Concurrent callers share one request.
 */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const res = await send('POST', '/api/accounts/refresh');
      const body = await parse(res);
      if (!res.ok || !body || !body.access_token) {
        if (res.status >= 500 || res.status === 429) throw toError(res, body);
        accessToken = null;
        setSessionHint(false);
        const code = body && body.error ? body.error.code : '';
        return { ended: END_REASON[code] || 'ended' };
      }
      accessToken = body.access_token;
      setSessionHint(true);
      return body;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * request(method, path, {body, headers, auth, signal}): the parsed JSON
 * answer, or throws ApiError. auth: false for the calls that need no session
 * (login, signup, the mailed links); they are never refreshed.
 */
export async function request(method, path, { body, headers, auth = true, signal } = {}) {
  let res = await send(method, path, body, headers, signal);
  if (res.status === 401 && auth && accessToken !== null) {
    const renewed = await refresh();
    if (renewed.ended) {
      sessionEnded(renewed.ended);
      throw toError(res, await parse(res));
    }
    res = await send(method, path, body, headers, signal);
    if (res.status === 401) {
      accessToken = null;
      setSessionHint(false);
      sessionEnded('revoked');
    }
  }
  const data = await parse(res);
  if (!res.ok) throw toError(res, data);
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body }),
  patch: (path, body, opts) => request('PATCH', path, { ...opts, body }),
  del: (path, opts) => request('DELETE', path, opts),
};

/** Query string from an object, leaving out empty values. */
export function qs(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A random id (hex) for client_msg_id and Idempotency-Key. */
export function randomId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs fn() again while it fails transiently (network, 502-504, 429 with its
 * Retry-After), at most `tries` times, 1 s, 2 s, 4 s apart. Only for
 * requests that are safe to repeat: reads, and writes with an
 * Idempotency-Key or a client_msg_id.
 */
export async function withRetry(fn, { tries = 4 } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const transient = err.status === 0 || err.status === 502 || err.status === 503 || err.status === 504 ||
        err.code === 'rate_limited' || err.code === 'idempotency_key_in_use';
      if (!transient || i >= tries) throw err;
      await sleep(err.retryAfter ? err.retryAfter * 1000 : 1000 * 2 ** (i - 1));
    }
  }
}

// ---- the endpoints the pages use ------------------------------------------

async function loggedIn(data) {
  if (data && data.access_token) {
    accessToken = data.access_token;
    setSessionHint(true);
  }
  return data;
}

export const accounts = {
  signup: (email, password, display_name) =>
    api.post('/api/accounts/signup', { email, password, display_name }, { auth: false }),
  /** A token pair, or {mfa_required, mfa_ticket} for the second step. */
  login: (email, password) =>
    api.post('/api/accounts/login', { email, password, cookie: true }, { auth: false }).then(loggedIn),
  loginMfa: (mfa_ticket, { code, recovery_code }) =>
    api
      .post('/api/accounts/login/mfa', { mfa_ticket, code, recovery_code, cookie: true }, { auth: false })
      .then(loggedIn),
  async logout() {
    try {
      await send('POST', '/api/accounts/logout');
    } finally {
      accessToken = null;
      setSessionHint(false);
    }
  },
  me: () => api.get('/api/accounts/me'),
  updateMe: (fields) => api.patch('/api/accounts/me', fields),
  changeEmail: (email, current_password) => api.post('/api/accounts/me/email', { email, current_password }),
  verifyEmail: (token) => api.post('/api/accounts/email/verify', { token }, { auth: false }),
  resendVerification: () => api.post('/api/accounts/email/verify/resend'),
  forgotPassword: (email) => api.post('/api/accounts/password/forgot', { email }, { auth: false }),
  resetPassword: (token, password) => api.post('/api/accounts/password/reset', { token, password }, { auth: false }),
  sessions: () => api.get('/api/accounts/me/sessions'),
  endSession: (id) => api.del(`/api/accounts/me/sessions/${encodeURIComponent(id)}`),
  endAllSessions: () => api.del('/api/accounts/me/sessions'),
  mfaEnrol: (current_password) => api.post('/api/accounts/me/mfa/enrol', { current_password }),
  mfaConfirm: (code) => api.post('/api/accounts/me/mfa/confirm', { code }),
  mfaDisable: (fields) => api.post('/api/accounts/me/mfa/disable', fields),
  mfaRecoveryCodes: (fields) => api.post('/api/accounts/me/mfa/recovery-codes', fields),
  deleteMe: (fields) => api.post('/api/accounts/me/delete', fields),
  users: (params) => api.get(`/api/accounts/users${qs(params)}`),
  user: (id) => api.get(`/api/accounts/users/${id}`),
  updateUser: (id, fields) => api.patch(`/api/accounts/users/${id}`, fields),
  resetUserMfa: (id) => api.del(`/api/accounts/users/${id}/mfa`),
};

/** If-Match for a project read at this version (the API's ETag). */
const ifMatch = (version) => ({ 'If-Match': version === '*' ? '*' : `"${version}"` });

export const projects = {
  list: (params) => api.get(`/api/projects${qs(params)}`),
  /** key: an Idempotency-Key made once per form submission, so retries create one project. */
  create: (fields, key) => withRetry(() => api.post('/api/projects', fields, { headers: { 'Idempotency-Key': key } })),
  get: (id) => api.get(`/api/projects/${id}`),
  update: (id, version, fields) => api.patch(`/api/projects/${id}`, fields, { headers: ifMatch(version) }),
  remove: (id, version) => api.del(`/api/projects/${id}`, version ? { headers: ifMatch(version) } : undefined),
  primary: () => api.get('/api/projects/primary'),
};

export const chat = {
  history: (room, params) => api.get(`/api/chat/rooms/${room}/messages${qs(params)}`),
  post: (room, body, client_msg_id) => api.post(`/api/chat/rooms/${room}/messages`, { body, client_msg_id }),
  ticket: (room) => api.post(`/api/chat/rooms/${room}/ticket`),
};

export const system = {
  status: (svc) => api.get(`/api/${svc}/admin/status`),
};
