// lists.js: the API lists page by cursor, oldest first, with no search. For
// a person's own projects (tens, not thousands) the client reads every page
// and sorts and searches here; see docs/web-client.md for what the API could
// add (order, a name filter) to do this on the server.
export async function readAll(fetchPage, key, { pageSize = 100, maxPages = 50 } = {}) {
  const all = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const data = await fetchPage({ limit: pageSize, cursor });
    all.push(...data[key]);
    cursor = data.next_cursor;
    if (!cursor) return { items: all, complete: true };
  }
  return { items: all, complete: false };
}

export const SORTS = {
  newest: { label: 'Newest first', fn: (a, b) => b.id - a.id },
  oldest: { label: 'Oldest first', fn: (a, b) => a.id - b.id },
  updated: { label: 'Recently updated', fn: (a, b) => (b.updated_at || '').localeCompare(a.updated_at || '') || b.id - a.id },
  name: { label: 'Name (A–Z)', fn: (a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }) || b.id - a.id },
};

export function searchAndSort(items, query, sort, fields = ['name', 'description']) {
  const q = query.trim().toLowerCase();
  const hit = q ? items.filter((p) => fields.some((f) => String(p[f] || '').toLowerCase().includes(q))) : items;
  return [...hit].sort((SORTS[sort] || SORTS.newest).fn);
}

/** "3 minutes ago", "yesterday", "12 Nov". */
export function ago(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 172800) return 'yesterday';
  return d.toLocaleDateString([], { day: 'numeric', month: 'short', year: s > 300 * 86400 ? 'numeric' : undefined });
}
