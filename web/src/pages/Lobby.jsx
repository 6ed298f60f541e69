// Lobby.jsx: the chat room every signed-in user shares.
import ChatRoom from '../chat/ChatRoom.jsx';

export default function LobbyPage() {
  return (
    <section className="page">
      <h1>Lobby</h1>
      <p className="muted">Everyone who is signed in can read and write here.</p>
      <ChatRoom room="lobby" title="Lobby chat" large />
    </section>
  );
}
