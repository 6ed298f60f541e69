// LiveHub: while a user is signed in and not in the lobby, one live
// connection to the lobby counts the messages others post there (the nav's
// badge, the tab title). It also hears the server end the session: accounts
// closes a user's live subscriptions when it disables the user or ends a
// session, and a closed subscription makes the hub ask accounts who the
// user is (accounts reads revocations at once), so a disabled user is sent
// to the login page within a second or two, whatever page is open.
import { useEffect } from 'react';
import { useLocation } from 'react-router';
import { accounts, chat } from '../api.js';
import { connectLive } from '../chat/live.js';
import { addUnread, lastSeen } from '../lib/store.js';
import { useSession } from '../session.jsx';

const ROOM = 'lobby';

export default function LiveHub() {
  const { user } = useSession();
  const { pathname } = useLocation();
  const inLobby = pathname === '/lobby';
  const uid = user ? user.id : null;

  useEffect(() => {
    if (!uid || inLobby) return undefined;
    let stop = null;
    let live = true;
    (async () => {
      if (lastSeen[ROOM] === undefined) {
        try {
          const data = await chat.history(ROOM, { limit: 1 });
          lastSeen[ROOM] = data.messages.length ? data.messages[data.messages.length - 1].id : 0;
        } catch {
          // no baseline yet: the live connection's first read sets it (below)
        }
      }
      if (!live) return;
      stop = connectLive(ROOM, {
        lastId: () => lastSeen[ROOM],
        deliver: (messages) => {
          if (lastSeen[ROOM] === undefined) {
            // the first read failed: what the lobby holds now is not new
            lastSeen[ROOM] = messages.reduce((n, m) => Math.max(n, m.id), 0);
            return;
          }
          const fresh = messages.filter((m) => m.id > lastSeen[ROOM]);
          for (const m of fresh) lastSeen[ROOM] = Math.max(lastSeen[ROOM], m.id);
          addUnread(ROOM, fresh.filter((m) => m.author_id !== uid).length);
        },
        status: () => {},
        onDrop: () => {
          accounts.me().catch(() => {}); // a 401 there ends the session (api.js)
        },
      });
    })();
    return () => {
      live = false;
      if (stop) stop();
    };
  }, [uid, inLobby]);
  return null;
}
