// Lobby.jsx: the chat room every signed-in user shares, the full height of
// the window with the message box pinned at the bottom.
import ChatRoom from '../chat/ChatRoom.jsx';
import { useTitle } from '../lib/store.js';

export default function LobbyPage() {
  useTitle('Lobby');
  return (
    <section className="page page-fill">
      <div className="page-head page-head-compact">
        <h1>Lobby</h1>
        <p className="muted">Everyone who is signed in can read and write here.</p>
      </div>
      <ChatRoom room="lobby" title="Lobby chat" className="chat-fill" />
    </section>
  );
}
