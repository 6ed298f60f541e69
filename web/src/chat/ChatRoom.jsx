// ChatRoom: a room's history, its live messages, an unread marker for what
// came while the user was scrolled up or away, and a box that sends with
// Enter (Shift+Enter for a new line). Used by the lobby and each project page.
import { useCallback, useEffect, useRef, useState } from 'react';
import { chat } from '../api.js';
import LoaderButton from '../components/LoaderButton.jsx';
import { useSession } from '../session.jsx';
import { CHAT_BODY_MAX } from '../validate.js';
import { connectLive } from './live.js';

const STATUS_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  denied: 'Not allowed',
};

function newClientId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

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

function time(ts) {
  const d = new Date(ts.replace(' ', 'T') + (/[zZ+]/.test(ts.slice(10)) ? '' : 'Z'));
  return Number.isNaN(d.getTime()) ? ts : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export default function ChatRoom({ room, title, large = false }) {
  const { user } = useSession();
  const [messages, setMessages] = useState([]);
  const [status, setStatus] = useState('connecting');
  const [error, setError] = useState(null);
  const [hasOlder, setHasOlder] = useState(false);
  const [unread, setUnread] = useState(0);
  const [firstUnread, setFirstUnread] = useState(null);
  const [text, setText] = useState('');
  const [sendError, setSendError] = useState(null);
  const [sending, setSending] = useState(false);
  const listRef = useRef(null);
  const atBottom = useRef(true);
  const lastId = useRef(0);
  const ready = useRef(false);
  const clientId = useRef(newClientId());
  const sendGuard = useRef(false);

  const deliver = useCallback(
    (incoming) => {
      if (incoming.length === 0) return;
      const fresh = incoming.filter((m) => m.id > lastId.current);
      for (const m of incoming) if (m.id > lastId.current) lastId.current = m.id;
      setMessages((old) => merge(old, incoming));
      const others = fresh.filter((m) => m.author_id !== user.id);
      if (ready.current && others.length > 0 && (!atBottom.current || document.hidden)) {
        setUnread((n) => n + others.length);
        setFirstUnread((id) => id ?? others[0].id);
      }
    },
    [user.id],
  );

  useEffect(() => {
    let stop = null;
    let live = true;
    chat
      .history(room, { limit: 50 })
      .then((data) => {
        if (!live) return;
        deliver(data.messages);
        setHasOlder(data.messages.length === 50);
        ready.current = true;
        stop = connectLive(room, { lastId: () => lastId.current, deliver, status: setStatus });
      })
      .catch((err) => {
        if (!live) return;
        setStatus('denied');
        setError(err.status === 403 || err.status === 404 ? 'You cannot use this room.' : err.message);
      });
    return () => {
      live = false;
      if (stop) stop();
    };
  }, [room, deliver]);

  // keep the newest message in view while the user is at the bottom
  useEffect(() => {
    const el = listRef.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  const markRead = useCallback(() => {
    if (atBottom.current && !document.hidden) setUnread(0);
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
    setUnread(0);
  };

  const loadOlder = async () => {
    if (messages.length === 0) return;
    try {
      const data = await chat.history(room, { before: messages[0].id, limit: 50 });
      const el = listRef.current;
      const fromBottom = el.scrollHeight - el.scrollTop;
      setMessages((old) => merge(old, data.messages));
      setHasOlder(data.messages.length === 50);
      requestAnimationFrame(() => {
        el.scrollTop = el.scrollHeight - fromBottom;
      });
    } catch (err) {
      setError(err.message);
    }
  };

  const tooLong = Array.from(text).length > CHAT_BODY_MAX;
  const send = async () => {
    const body = text;
    if (sendGuard.current || body.trim() === '' || tooLong) return;
    sendGuard.current = true;
    setSending(true);
    setSendError(null);
    try {
      const data = await chat.post(room, body, clientId.current);
      clientId.current = newClientId();
      setText('');
      setFirstUnread(null);
      atBottom.current = true;
      deliver([data.message]);
    } catch (err) {
      setSendError(err.message); // the text stays, and a retry reuses its client_msg_id
    } finally {
      sendGuard.current = false;
      setSending(false);
    }
  };

  const onKeyDown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const denied = status === 'denied';
  return (
    <section className={`card chat${large ? ' chat-large' : ''}`} aria-label={title} data-room={room}>
      <header className="chat-head">
        <h2>{title}</h2>
        {unread > 0 && (
          <button type="button" className="btn btn-small unread-pill" onClick={jumpToNewest}>
            {unread} new {unread === 1 ? 'message' : 'messages'}
          </button>
        )}
        <span className={`live-status live-${status}`} role="status">
          {STATUS_TEXT[status]}
        </span>
      </header>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <div className="chat-log" ref={listRef} onScroll={onScroll} tabIndex={0} aria-label={`${title} messages`}>
        {hasOlder && (
          <div className="more">
            <LoaderButton className="btn-small btn-ghost" onClick={loadOlder}>
              Load earlier messages
            </LoaderButton>
          </div>
        )}
        {messages.length === 0 && !error && <p className="muted chat-empty">No messages yet. Say hello!</p>}
        <ol className="messages">
          {messages.map((m) => (
            <li key={m.id} className={`message${m.author_id === user.id ? ' message-own' : ''}`} data-id={m.id}>
              {m.id === firstUnread && (
                <div className="unread-marker" role="separator">
                  <span>New</span>
                </div>
              )}
              <div className="message-meta">
                <span className="message-author">{m.author_name || `User ${m.author_id}`}</span>
                <time dateTime={m.created_at}>{time(m.created_at)}</time>
              </div>
              <p className="message-body">{m.body}</p>
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
          rows={2}
          value={text}
          placeholder={denied ? 'You cannot write here' : 'Write a message…'}
          aria-describedby={`compose-hint-${room}`}
          disabled={denied}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={onKeyDown}
          aria-invalid={tooLong || undefined}
        />
        <LoaderButton type="submit" className="btn-primary" loading={sending} disabled={denied || tooLong || !text.trim()}>
          Send
        </LoaderButton>
      </form>
      <p className="field-hint" id={`compose-hint-${room}`}>
        Enter sends; Shift+Enter starts a new line.
      </p>
      {tooLong && <p className="field-error">A message is at most {CHAT_BODY_MAX} characters.</p>}
      {sendError && (
        <p className="field-error" role="alert">
          {sendError}
        </p>
      )}
    </section>
  );
}
