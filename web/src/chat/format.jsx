// format.jsx: how a message reads: its text with links made clickable (React
// elements from linkifyjs's tokens: never HTML from a message, and only
// http(s) and mailto links), its time, the day dividers and the grouping of
// consecutive messages by one author within a minute.
import Linkify from 'linkify-react';

const SAFE = /^(https?:|mailto:)/i;

const LINK_OPTIONS = {
  defaultProtocol: 'https',
  target: '_blank',
  rel: 'noopener noreferrer nofollow',
  validate: { url: (value) => SAFE.test(value) || !/^[a-z][a-z0-9+.-]*:/i.test(value) },
  className: 'message-link',
};

export function MessageText({ text }) {
  return <Linkify options={LINK_OPTIONS}>{text}</Linkify>;
}

export function parseTime(ts) {
  const d = new Date(ts.replace(' ', 'T') + (/[zZ+]/.test(ts.slice(10)) ? '' : 'Z'));
  return Number.isNaN(d.getTime()) ? null : d;
}

export function clock(d) {
  return d ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
}

function dayKey(d) {
  return d ? `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}` : '';
}

export function dayLabel(d) {
  if (!d) return '';
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return d.toLocaleDateString([], {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    year: d.getFullYear() === today.getFullYear() ? undefined : 'numeric',
  });
}

export function authorName(m) {
  return m.author_id === 0 ? 'Deleted user' : m.author_name || `User ${m.author_id}`;
}

/**
 * The rows to draw: {type: 'day', key, label} and {type: 'message', m,
 * first} where first says the message starts a group (another author, or
 * more than a minute after the one before, or a new day).
 */
export function layout(messages) {
  const rows = [];
  let prev = null;
  let prevDay = '';
  for (const m of messages) {
    const d = parseTime(m.created_at);
    const day = dayKey(d);
    if (day !== prevDay) {
      rows.push({ type: 'day', key: `day-${day}-${m.id}`, label: dayLabel(d) });
      prevDay = day;
      prev = null;
    }
    const first =
      !prev || prev.m.author_id !== m.author_id || !d || !prev.d || d.getTime() - prev.d.getTime() > 60000 || m.author_id === 0;
    rows.push({ type: 'message', m, d, first });
    prev = { m, d };
  }
  return rows;
}
