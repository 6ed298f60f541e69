// live.js: a room's live connection. Each connection needs a single-use
// ticket (POST .../ticket); it is a WebSocket, or an EventSource when
// WebSockets are missing or never open. When it drops it comes back by
// itself (1 s, 2 s, 4 s ... at most 15 s apart, with a new ticket; at once
// when the browser is back online), and every time it opens it reads the
// history after the last message the page has, so nothing sent while it was
// away is missed. Each live event is a stored message's JSON (with prev_id,
// the id of the one before it in the room: a gap is read from history), or
// {"resync": true}. Only a 403 or
// 404 for the room is a refusal; a network failure or a restarting service
// is retried, never shown as "not allowed".
import { chat } from '../api.js';
import { isOnline, onConnectionChange } from '../lib/connection.js';

const MAX_DELAY_MS = 15000;
const GAP_PAGE = 200;
const LATEST = 50;

/**
 * connectLive(room, {lastId, deliver, status, onDrop, onOlder}): starts;
 * returns stop(). lastId() gives the newest id the page has (0 or undefined:
 * none, the room was empty or its first read failed); deliver(messages) adds messages;
 * status(s) with s one of 'connecting', 'live', 'reconnecting', 'offline',
 * 'denied'; onDrop() when the server closed a live connection (the session
 * may have been ended: the caller may check it); onOlder() when the page
 * was given the newest messages only and older ones are there to load.
 */
export function connectLive(room, { lastId, deliver, status, onDrop, onOlder }) {
  let stopped = false;
  let conn = null;
  let timer = null;
  let attempt = 0;
  let wsFailures = 0;
  let useEventSource = typeof WebSocket === 'undefined';

  const close = () => {
    if (conn) {
      const c = conn;
      conn = null;
      c.close();
    }
  };

  const retry = () => {
    conn = null;
    if (stopped || timer) return;
    status(isOnline() ? 'reconnecting' : 'offline');
    const delay = Math.min(1000 * 2 ** attempt, MAX_DELAY_MS);
    attempt += 1;
    timer = setTimeout(open, delay);
  };

  // one history read at a time: a request for another while one runs makes
  // it go round once more (reading after the newest id by then)
  let filling = false;
  let again = false;
  const fillGap = async () => {
    if (filling) {
      again = true;
      return;
    }
    filling = true;
    try {
      do {
        again = false;
        await readGap();
      } while (again && !stopped);
    } finally {
      filling = false;
    }
  };

  const readGap = async () => {
    try {
      for (;;) {
        const after = lastId();
        const data = await chat.history(room, after ? { after, limit: GAP_PAGE } : { limit: LATEST });
        if (stopped) return;
        deliver(data.messages);
        if (!after) {
          // no id to read after (the API has no after=0): the newest page,
          // and what came before it is there to load on demand
          if (onOlder && data.messages.length === LATEST) onOlder();
          return;
        }
        if (data.messages.length < GAP_PAGE) return;
      }
    } catch {
      // the next message or reconnect fills it
    }
  };

  const opened = () => {
    attempt = 0;
    wsFailures = 0;
    status('live');
    fillGap();
  };

  const onEvent = (e) => {
    try {
      const m = JSON.parse(e.data);
      // a message whose previous one in the room (prev_id) the page does
      // not have: one was stored but never delivered live; history has both
      if (m && typeof m.id === 'number' && typeof m.prev_id === 'number' && m.prev_id > (lastId() || 0)) fillGap();
      else if (m && typeof m.id === 'number') deliver([m]);
      // live delivery was interrupted: what was missed is in history
      else if (m && m.resync === true) fillGap();
    } catch {
      // not JSON: nothing else is published
    }
  };

  async function open() {
    timer = null;
    if (stopped) return;
    if (!isOnline()) {
      status('offline');
      return; // the connection store calls back when the network is there
    }
    status(attempt === 0 ? 'connecting' : 'reconnecting');
    let ticket;
    try {
      ticket = await chat.ticket(room);
    } catch (err) {
      if (stopped) return;
      if (err.status === 403 || err.status === 404) {
        status('denied');
        return;
      }
      if (err.status === 401) return; // the session is over: the app goes to login
      retry();
      return;
    }
    if (stopped) return;
    if (!useEventSource) {
      const url = new URL(ticket.url, window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url.href);
      let wasOpen = false;
      conn = ws;
      ws.onopen = () => {
        wasOpen = true;
        opened();
      };
      ws.onmessage = onEvent;
      ws.onclose = () => {
        if (conn !== ws) return;
        if (!wasOpen && ++wsFailures >= 2) useEventSource = true; // a proxy that drops WebSockets
        if (wasOpen && onDrop) onDrop();
        retry();
      };
    } else {
      const es = new EventSource(ticket.url);
      conn = es;
      let wasOpen = false;
      es.onopen = () => {
        wasOpen = true;
        opened();
      };
      es.onmessage = onEvent;
      // its own reconnect would reuse the spent ticket: close, and start over
      es.onerror = () => {
        if (conn !== es) return;
        es.close();
        if (wasOpen && onDrop) onDrop();
        retry();
      };
    }
  }

  // offline: say so (the socket may look open for a while); online: at once
  const unwatch = onConnectionChange(() => {
    if (stopped) return;
    if (!isOnline()) {
      status('offline');
      close();
      if (timer) clearTimeout(timer);
      timer = null;
    } else if (!conn) {
      if (timer) clearTimeout(timer);
      timer = null;
      attempt = 0;
      open();
    }
  });

  open();
  return () => {
    stopped = true;
    unwatch();
    if (timer) clearTimeout(timer);
    close();
  };
}
