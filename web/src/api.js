// api.js: the one way the pages talk to the API.
//
// The access token lives in this module's memory only; the refresh token is
// the HttpOnly cookie pl_refresh (Path=/api/accounts/), which page scripts
// never see. A request answered 401 refreshes the access token once (one
// refresh at a time, shared by every caller: a refresh token is single-use,
// and a second use would end the session) and is retried; when the refresh
// fails the session is over and the app is told (onSessionEnded), which sends
// the user to the login page.

let accessToken = null;
let refreshing = null;
let sessionEnded = () => {};

/** An API error: the HTTP status and the server's {code, message, field}. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message || `Request failed (${status})`);
    this.status = status;
    this.code = code || 'error';
    this.field = field || null;
  }
}

/** Called with no argument when a refresh fails: the user must log in again. */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

export function setAccessToken(token) {
  accessToken = token;
}

async function parse(res) {
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toError(res, body) {
  const e = body && body.error ? body.error : {};
  let message = e.message;
  if (!message) message = res.status >= 500 ? 'The server could not answer. Try again shortly.' : `Request failed (${res.status}).`;
  return new ApiError(res.status, e.code, message, e.field);
}

async function send(method, path, body, headers) {
  const h = { Accept: 'application/json', ...headers };
  if (accessToken) h.Authorization = `Bearer ${accessToken}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  try {
    return await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'The server cannot be reached. Check the connection and try again.');
  }
}

/**
 * Exchanges the refresh cookie for a new access token (cookie-only POST, no
 * body). Resolves to the login answer ({access_token, user, ...}) or null.
 * Concurrent callers share one request.
 */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      let res;
      try {
        res = await fetch('/api/accounts/refresh', { method: 'POST', credentials: 'same-origin' });
      } catch {
        return null;
      }
      const body = await parse(res);
      if (!res.ok || !body || !body.access_token) {
        accessToken = null;
        return null;
      }
      accessToken = body.access_token;
      return body;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * request(method, path, {body, headers, auth}): the parsed JSON answer, or
 * throws ApiError. auth: false for the calls that need no session (login,
 * signup); they are never retried.
 */
export async function request(method, path, { body, headers, auth = true } = {}) {
  let res = await send(method, path, body, headers);
  if (res.status === 401 && auth) {
    const renewed = await refresh();
    if (!renewed) {
      sessionEnded();
      throw toError(res, await parse(res));
    }
    res = await send(method, path, body, headers);
    if (res.status === 401) sessionEnded();
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
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

// ---- the endpoints the pages use ------------------------------------------

export const accounts = {
  signup: (email, password, display_name) =>
    api.post('/api/accounts/signup', { email, password, display_name }, { auth: false }),
  async login(email, password) {
    const data = await api.post('/api/accounts/login', { email, password, cookie: true }, { auth: false });
    accessToken = data.access_token;
    return data;
  },
  async logout() {
    try {
      await fetch('/api/accounts/logout', { method: 'POST', credentials: 'same-origin' });
    } finally {
      accessToken = null;
    }
  },
  me: () => api.get('/api/accounts/me'),
  updateMe: (fields) => api.patch('/api/accounts/me', fields),
  users: (params) => api.get(`/api/accounts/users${qs(params)}`),
  updateUser: (id, fields) => api.patch(`/api/accounts/users/${id}`, fields),
};

/** If-Match for a project read at this version (the API's ETag). */
const ifMatch = (version) => ({ 'If-Match': `"${version}"` });

export const projects = {
  list: (params) => api.get(`/api/projects${qs(params)}`),
  create: (fields) => api.post('/api/projects', fields),
  get: (id) => api.get(`/api/projects/${id}`),
  update: (id, version, fields) => api.patch(`/api/projects/${id}`, fields, { headers: ifMatch(version) }),
  remove: (id) => api.del(`/api/projects/${id}`),
  primary: () => api.get('/api/projects/primary'),
};

export const chat = {
  history: (room, params) => api.get(`/api/chat/rooms/${room}/messages${qs(params)}`),
  post: (room, body, client_msg_id) => api.post(`/api/chat/rooms/${room}/messages`, { body, client_msg_id }),
  ticket: (room) => api.post(`/api/chat/rooms/${room}/ticket`),
};
