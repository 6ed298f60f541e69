// connection.js: is the server reachable? One small store that the header,
// the chat and the API module share. The browser's online/offline events, a
// network failure of any request and a heartbeat drive it. The heartbeat is
// a HEAD of a static file that nginx answers itself, so it never wakes a
// service's pool: every 30 s while the page is visible, and while offline
// every 2 s, 4 s ... at most 15 s apart until an answer comes back.
import { useSyncExternalStore } from 'react';

const VISIBLE_EVERY_MS = 30000;
const OFFLINE_MAX_MS = 15000;

let online = typeof navigator === 'undefined' ? true : navigator.onLine !== false;
let timer = null;
let attempt = 0;
const listeners = new Set();

function emit() {
  for (const l of listeners) l();
}

function set(next) {
  if (next === online) return;
  online = next;
  emit();
}

async function probe() {
  try {
    const res = await fetch('/favicon.svg', { method: 'HEAD', cache: 'no-store', credentials: 'omit' });
    return res.ok || res.status < 500;
  } catch {
    return false;
  }
}

function schedule() {
  if (timer) clearTimeout(timer);
  let delay;
  if (online) {
    attempt = 0;
    delay = VISIBLE_EVERY_MS;
  } else {
    delay = Math.min(2000 * 2 ** attempt, OFFLINE_MAX_MS);
    attempt += 1;
  }
  timer = setTimeout(beat, delay);
}

async function beat() {
  timer = null;
  if (document.hidden && online) {
    schedule();
    return;
  }
  set(await probe());
  schedule();
}

/** A request failed for want of a network: offline until the heartbeat answers. */
export function reportNetworkFailure() {
  if (!online) return;
  set(false);
  schedule();
}

/** A request got an answer: the network is there. */
export function reportAnswer() {
  if (online) return;
  set(true);
  schedule();
}

/** Probe now (the browser says it is back, or a user asked). */
export function checkNow() {
  if (timer) clearTimeout(timer);
  beat();
}

export function isOnline() {
  return online;
}

export function onConnectionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function useOnline() {
  return useSyncExternalStore(onConnectionChange, isOnline, () => true);
}

export function startConnectionWatch() {
  window.addEventListener('offline', () => {
    set(false);
    schedule();
  });
  window.addEventListener('online', () => {
    attempt = 0;
    checkNow();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) checkNow();
  });
  schedule();
}
