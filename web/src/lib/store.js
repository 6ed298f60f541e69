// store.js: two small stores the shell shares with pages: the page's title
// (document.title names the thing shown, with the unread count in front),
// and unread chat messages per room (the nav's badges).
import { useEffect, useSyncExternalStore } from 'react';

function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    set(next) {
      state = typeof next === 'function' ? next(state) : next;
      for (const l of listeners) l();
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

// ---- unread messages: {room: count} -----------------------------------------

export const unreadStore = createStore({});

export function setUnread(room, count) {
  unreadStore.set((s) => (s[room] === count ? s : { ...s, [room]: count }));
}

export function addUnread(room, n) {
  if (n > 0) unreadStore.set((s) => ({ ...s, [room]: (s[room] || 0) + n }));
}

export function useUnread(room) {
  return useSyncExternalStore(unreadStore.subscribe, () => unreadStore.get()[room] || 0);
}

function totalUnread() {
  return Object.values(unreadStore.get()).reduce((a, b) => a + b, 0);
}

// ---- the document's title -----------------------------------------------------

let pageTitle = 'Pilotlight';

function renderTitle() {
  const n = totalUnread();
  const base = pageTitle === 'Pilotlight' ? 'Pilotlight' : `${pageTitle} · Pilotlight`;
  document.title = n > 0 ? `(${n}) ${base}` : base;
}
unreadStore.subscribe(renderTitle);

/** Names the page in the tab: useTitle('Roof repair'). */
export function useTitle(title) {
  useEffect(() => {
    if (!title) return;
    pageTitle = title;
    renderTitle();
  }, [title]);
}

// ---- the last message id seen per room (the hub counts what came after) ----------

export const lastSeen = {};
