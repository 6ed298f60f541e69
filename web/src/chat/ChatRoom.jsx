// ChatRoom: a room's history, its live messages, an unread marker for what
// came while the user was scrolled up or away, and a box that sends with
// Enter (Shift+Enter for a new line). Used by the lobby and each project page.
//
// Nothing is lost to a network blip: the history is read again with backoff
// until it comes (only a 403 or 404 means "not allowed"); a message is shown
// at once as pending and sent with its client_msg_id, again and again while
// the network or the service is away, so it is stored once however many
// tries it takes.
import { useCallback, useEffect, useRef, useState } from 'react';
import { ArrowDown, Clock, RotateCcw, Send, Trash2, WifiOff } from 'lucide-react';
import { chat, randomId } from '../api.js';
import LoaderButton from '../components/LoaderButton.jsx';
import { humanError, isTransient } from '../lib/errors.js';
import { isOnline, onConnectionChange } from '../lib/connection.js';
import { lastSeen, setUnread } from '../lib/store.js';
import { useSession } from '../session.jsx';
import { CHAT_BODY_MAX } from '../validate.js';
import { connectLive } from './live.js';
import { MessageText, authorName, clock, layout } from './format.jsx';

const STATUS_TEXT = {
  connecting: 'Connecting…',
  loading: 'Loading…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline — retrying',
  denied: 'Not allowed',
};

const PAGE = 50;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Adds messages to a list sorted by id, each id once. */
function merge(list, incoming) {
  const byId = new Map(list.map((m) => [m.id, m]));
  let changed = false;
  for (const m of incoming) {
    if (!byId.has(m.id)) {
      byId.set(m.id, m);
      changed = true;
    }
  }
  return changed ? [...byId.values()].sort((a, b) => a.id - b.id) : list;
}

export default function ChatRoom({ room, title, className = '' }) {
  const { user } = useSession();
  const [messages, setMessages] = useState([]);
  const [status, setStatus] = useState('loading');
  const [denied, setDenied] = useState(null);
  const [hasOlder, setHasOlder] = useState(false);
  const [unread, setUnreadCount] = useState(0);
  const [firstUnread, setFirstUnread] = useState(null);
  const [text, setText] = useState('');
  const [pending, setPending] = useState([]); // {cid, body, state: 'sending'|'waiting'|'failed', error}
  const [olderError, setOlderError] = useState(null);
  const listRef = useRef(null);
  const atBottom = useRef(true);
  const lastId = useRef(0);
  const ready = useRef(false);
  const pendingRef = useRef(pending);
  pendingRef.current = pending;
  const sendLoop = useRef(null);
  const wake = useRef(null);

  // deliver(messages, own): adds messages from history or live delivery; own:
  // this page's POST answer, which is shown but does not move lastId (the
  // newest message received in the room's order), so that a live message
  // whose prev_id the page lacks, or a resync, still reads what came before it
  const deliver = useCallback(
    (incoming, own = false) => {
      if (incoming.length === 0) return;
      const fresh = incoming.filter((m) => m.id > lastId.current);
      if (!own) for (const m of incoming) if (m.id > lastId.current) lastId.current = m.id;
      // shown here, so not new for the nav's count once the user leaves (LiveHub)
      lastSeen[room] = Math.max(lastSeen[room] || 0, lastId.current);
      setMessages((old) => merge(old, incoming));
      // a pending message that arrived (live, before its POST answered) is sent
      const mine = new Set(incoming.filter((m) => m.author_id === user.id && m.client_msg_id).map((m) => m.client_msg_id));
      if (mine.size) setPending((p) => p.filter((x) => !mine.has(x.cid)));
      const others = fresh.filter((m) => m.author_id !== user.id);
      if (ready.current && others.length > 0 && (!atBottom.current || document.hidden)) {
        setUnreadCount((n) => n + others.length);
        setFirstUnread((id) => id ?? others[0].id);
      }
    },
    [room, user.id],
  );

  // the room's unread count shows in the tab title while it is hidden
  useEffect(() => {
    setUnread(room, unread);
  }, [room, unread]);
  useEffect(() => () => setUnread(room, 0), [room]);

  // history (retried until it comes), then live
  useEffect(() => {
    let stop = null;
    let live = true;
    (async () => {
      for (let attempt = 0; live; attempt++) {
        try {
          const data = await chat.history(room, { limit: PAGE });
          if (!live) return;
          deliver(data.messages);
          setHasOlder(data.messages.length === PAGE);
          ready.current = true;
          stop = connectLive(room, { lastId: () => lastId.current, deliver, status: setStatus, onOlder: () => setHasOlder(true) });
          return;
        } catch (err) {
          if (!live) return;
          if (err.status === 403 || err.status === 404) {
            setStatus('denied');
            setDenied(err.status === 404 ? 'This chat room does not exist.' : 'You do not have access to this room.');
            return;
          }
          if (err.status === 401) return; // the session is over: the app goes to login
          setStatus(isOnline() ? 'reconnecting' : 'offline');
          await Promise.race([
            sleep(Math.min(1000 * 2 ** attempt, 15000)),
            new Promise((r) => {
              const off = onConnectionChange(() => {
                if (isOnline()) {
                  off();
                  r();
                }
              });
            }),
          ]);
        }
      }
    })();
    return () => {
      live = false;
      if (stop) stop();
    };
  }, [room, deliver]);

  // the outbox: one message at a time, in order, each with its client_msg_id
  const runSendLoop = useCallback(async () => {
    if (sendLoop.current) return;
    sendLoop.current = true;
    try {
      for (let attempt = 0; ; ) {
        const next = pendingRef.current.find((p) => p.state !== 'failed');
        if (!next) return;
        setPending((ps) => ps.map((p) => (p.cid === next.cid ? { ...p, state: 'sending', error: null } : p)));
        try {
          const data = await chat.post(room, next.body, next.cid);
          attempt = 0;
          atBottom.current = true;
          setFirstUnread(null);
          pendingRef.current = pendingRef.current.filter((p) => p.cid !== next.cid);
          setPending((ps) => ps.filter((p) => p.cid !== next.cid));
          deliver([data.message], true);
        } catch (err) {
          if (err.status === 401) return;
          if (!isTransient(err)) {
            pendingRef.current = pendingRef.current.map((p) => (p.cid === next.cid ? { ...p, state: 'failed', error: humanError(err) } : p));
            setPending(pendingRef.current);
            continue;
          }
          const wait = err.retryAfter ? err.retryAfter * 1000 : Math.min(1000 * 2 ** attempt, 15000);
          attempt += 1;
          const note = err.status === 0 ? null : `${humanError(err)}`;
          setPending((ps) =>
            ps.map((p) => (p.cid === next.cid ? { ...p, state: 'waiting', error: note && err.retryAfter ? `${note}` : note } : p)),
          );
          await new Promise((r) => {
            wake.current = r;
            setTimeout(r, wait);
          });
          wake.current = null;
        }
      }
    } finally {
      sendLoop.current = false;
    }
  }, [room, deliver]);

  // back online: send what waits now
  useEffect(
    () =>
      onConnectionChange(() => {
        if (isOnline() && wake.current) wake.current();
      }),
    [],
  );

  // keep the newest message in view while the user is at the bottom
  useEffect(() => {
    const el = listRef.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages, pending]);

  const markRead = useCallback(() => {
    if (atBottom.current && !document.hidden) {
      setUnreadCount(0);
    }
  }, []);
  useEffect(() => {
    document.addEventListener('visibilitychange', markRead);
    return () => document.removeEventListener('visibilitychange', markRead);
  }, [markRead]);

  const onScroll = () => {
    const el = listRef.current;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    markRead();
  };

  const jumpToNewest = () => {
    const el = listRef.current;
    el.scrollTop = el.scrollHeight;
    atBottom.current = true;
    setUnreadCount(0);
  };

  const loadOlder = async () => {
    if (messages.length === 0) return;
    setOlderError(null);
    try {
      const data = await chat.history(room, { before: messages[0].id, limit: PAGE });
      const el = listRef.current;
      const fromBottom = el.scrollHeight - el.scrollTop;
      setMessages((old) => merge(old, data.messages));
      setHasOlder(data.messages.length === PAGE);
      requestAnimationFrame(() => {
        el.scrollTop = el.scrollHeight - fromBottom;
      });
    } catch (err) {
      setOlderError(humanError(err));
    }
  };

  const tooLong = Array.from(text).length > CHAT_BODY_MAX;
  const send = () => {
    const body = text;
    if (body.trim() === '' || tooLong || status === 'denied') return;
    const item = { cid: randomId(), body, state: 'sending', error: null };
    pendingRef.current = [...pendingRef.current, item];
    setPending(pendingRef.current);
    setText('');
    atBottom.current = true;
    runSendLoop();
  };
  const retryFailed = (cid) => {
    pendingRef.current = pendingRef.current.map((p) => (p.cid === cid ? { ...p, state: 'waiting', error: null } : p));
    setPending(pendingRef.current);
    runSendLoop();
  };
  const discard = (cid) => {
    pendingRef.current = pendingRef.current.filter((p) => p.cid !== cid);
    setPending(pendingRef.current);
  };

  const onKeyDown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const isDenied = status === 'denied';
  const rows = layout(messages);
  return (
    <section className={`card chat ${className}`} aria-label={title} data-room={room}>
      <header className="chat-head">
        <h2>{title}</h2>
        {unread > 0 && (
          <button type="button" className="btn btn-small unread-pill" onClick={jumpToNewest}>
            <ArrowDown aria-hidden="true" size={14} />
            {unread} new {unread === 1 ? 'message' : 'messages'}
          </button>
        )}
        <span className={`live-status live-${status}`} role="status">
          {status === 'offline' && <WifiOff aria-hidden="true" size={14} />}
          {STATUS_TEXT[status]}
        </span>
      </header>
      {denied && (
        <p className="notice notice-error chat-denied" role="alert">
          {denied}
        </p>
      )}
      <div className="chat-log" ref={listRef} onScroll={onScroll} tabIndex={0} aria-label={`${title} messages`}>
        {hasOlder && (
          <div className="more">
            <LoaderButton className="btn-small btn-ghost" onClick={loadOlder}>
              Load earlier messages
            </LoaderButton>
            {olderError && <p className="field-error">{olderError}</p>}
          </div>
        )}
        {messages.length === 0 && pending.length === 0 && !isDenied && status !== 'loading' && (
          <p className="muted chat-empty">No messages yet. Say hello!</p>
        )}
        <ol className="messages">
          {rows.map((r) =>
            r.type === 'day' ? (
              <li key={r.key} className="day">
                <div className="day-divider" role="separator" aria-label={r.label}>
                  <span>{r.label}</span>
                </div>
              </li>
            ) : (
              <li
                key={r.m.id}
                className={`message${r.m.author_id === user.id ? ' message-own' : ''}${r.first ? ' message-first' : ' message-cont'}`}
                data-id={r.m.id}
              >
                {r.m.id === firstUnread && (
                  <div className="unread-marker" role="separator">
                    <span>New</span>
                  </div>
                )}
                {r.first ? (
                  <div className="message-meta">
                    <span className={`message-author${r.m.author_id === 0 ? ' message-deleted' : ''}`}>{authorName(r.m)}</span>
                    <time dateTime={r.m.created_at}>{clock(r.d)}</time>
                  </div>
                ) : (
                  <span className="sr-only">
                    {authorName(r.m)}, {clock(r.d)}:
                  </span>
                )}
                <p className="message-body" dir="auto">
                  <MessageText text={r.m.body} />
                </p>
              </li>
            ),
          )}
          {pending.map((p) => (
            <li key={p.cid} className={`message message-own message-first message-pending message-${p.state}`} data-pending={p.state}>
              <div className="message-meta">
                <span className="message-author">{user.display_name}</span>
                <span className="pending-state">
                  <Clock aria-hidden="true" size={12} />
                  {p.state === 'failed' ? 'Not sent' : p.state === 'sending' ? 'Sending…' : 'Waiting to send'}
                </span>
              </div>
              <p className="message-body" dir="auto">{p.body}</p>
              {p.error && <p className="field-error">{p.error}</p>}
              {p.state === 'failed' && (
                <div className="pending-actions">
                  <button type="button" className="btn btn-small" onClick={() => retryFailed(p.cid)}>
                    <RotateCcw aria-hidden="true" size={14} /> Try again
                  </button>
                  <button type="button" className="btn btn-small btn-ghost" onClick={() => discard(p.cid)}>
                    <Trash2 aria-hidden="true" size={14} /> Discard
                  </button>
                </div>
              )}
            </li>
          ))}
        </ol>
      </div>
      <form
        className="chat-compose"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <label htmlFor={`compose-${room}`} className="sr-only">
          Message
        </label>
        <textarea
          id={`compose-${room}`}
          dir="auto"
          rows={1}
          value={text}
          placeholder={isDenied ? 'You cannot write in this room' : 'Write a message…'}
          aria-describedby={`compose-hint-${room}`}
          disabled={isDenied}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          aria-invalid={tooLong || undefined}
        />
        <button type="submit" className="btn btn-primary" disabled={isDenied || tooLong || !text.trim()}>
          <Send aria-hidden="true" size={16} />
          <span>Send</span>
        </button>
      </form>
      <p className="field-hint chat-hint" id={`compose-hint-${room}`}>
        {tooLong ? (
          <span className="field-error">A message is at most {CHAT_BODY_MAX} characters.</span>
        ) : (
          'Enter sends; Shift+Enter starts a new line.'
        )}
      </p>
    </section>
  );
}

