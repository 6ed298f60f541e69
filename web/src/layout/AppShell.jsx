// AppShell: the frame of every page: a one-row header (the brand, the main
// navigation, the connection state and the user's menu; on a small screen
// the navigation folds into a menu), the unconfirmed-email banner, the
// toasts, and the page.
import { Suspense, lazy, useState } from 'react';
import { NavLink, Outlet, useLocation } from 'react-router';
import { FolderKanban, MessagesSquare, Shield, Star, WifiOff } from 'lucide-react';
import { accounts } from '../api.js';
import { useOnline } from '../lib/connection.js';
import { humanError } from '../lib/errors.js';
import { useUnread } from '../lib/store.js';
import { useSession } from '../session.jsx';
import { toast } from '../components/toast.js';
import LiveHub from './LiveHub.jsx';

// what only a signed-in user needs loads with the first signed-in page
const SignedInMenus = lazy(() => import('./SignedInMenus.jsx'));
const ToastArea = lazy(() => import('../components/Toasts.jsx'));

function Badge({ count, label }) {
  if (!count) return null;
  return (
    <span className="count-badge" aria-label={`${count} ${label}`}>
      {count > 99 ? '99+' : count}
    </span>
  );
}

function navItems(user) {
  if (!user) return [];
  const items = [
    { to: '/projects', label: 'Projects', icon: FolderKanban },
    { to: '/primary', label: 'Primary', icon: Star },
    { to: '/lobby', label: 'Lobby', icon: MessagesSquare, room: 'lobby' },
  ];
  if (user.role === 'admin') items.push({ to: '/admin', label: 'Admin', icon: Shield });
  return items;
}

function ConnectionBadge() {
  const online = useOnline();
  if (online) return null;
  return (
    <span className="conn-badge" role="status">
      <WifiOff aria-hidden="true" size={14} />
      <span>Offline — retrying</span>
    </span>
  );
}

function NavItem({ item }) {
  const unread = useUnread(item.room || '');
  const Icon = item.icon;
  return (
    <li>
      <NavLink to={item.to} end={item.to === '/'}>
        <Icon aria-hidden="true" size={16} />
        <span>{item.label}</span>
        {item.room && <Badge count={unread} label="unread" />}
      </NavLink>
    </li>
  );
}

function Header() {
  const { user, logout } = useSession();
  const items = navItems(user);
  return (
    <header className="topbar">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <NavLink to="/" className="brand" aria-label="Pilotlight home">
        <svg className="brand-mark" viewBox="0 0 32 32" aria-hidden="true">
          <path d="M16 4c3.5 5.5 7 9 7 13.5a7 7 0 0 1-14 0C9 13 12.5 9.5 16 4z" />
        </svg>
        <span>Pilotlight</span>
      </NavLink>
      {user ? (
        <>
          <nav aria-label="Main" className="nav-wide">
            <ul className="nav">
              {items.map((it) => (
                <NavItem key={it.to} item={it} />
              ))}
            </ul>
          </nav>
          <div className="topbar-end">
            <ConnectionBadge />
            <Suspense fallback={<span className="menu-placeholder" aria-hidden="true" />}>
              <SignedInMenus items={items} user={user} logout={logout} />
            </Suspense>
          </div>
        </>
      ) : (
        <div className="topbar-end">
          <ConnectionBadge />
          <nav aria-label="Main">
            <ul className="nav">
              <li>
                <NavLink to="/login">Log in</NavLink>
              </li>
              <li>
                <NavLink to="/signup" className="nav-cta">
                  Sign up
                </NavLink>
              </li>
            </ul>
          </nav>
        </div>
      )}
    </header>
  );
}

function VerifyBanner() {
  const { user } = useSession();
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  if (!user || user.email_verified !== false) return null;
  const resend = async () => {
    setBusy(true);
    try {
      const data = await accounts.resendVerification();
      setSent(true);
      toast('Confirmation email sent', { description: `Check ${data.sent_to}.` });
    } catch (err) {
      toast(err.code === 'email_already_verified' ? 'Your address is already confirmed' : humanError(err), {
        tone: err.code === 'email_already_verified' ? 'success' : 'error',
      });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="banner" role="region" aria-label="Confirm your email">
      <p>
        Confirm your email address: we sent a link to <strong>{user.email}</strong>.
      </p>
      <button type="button" className="btn btn-small" onClick={resend} disabled={busy || sent}>
        {sent ? 'Sent' : 'Resend the link'}
      </button>
    </div>
  );
}

export default function AppShell() {
  const location = useLocation();
  const { user } = useSession();
  return (
    <>
      <div className={location.pathname === '/lobby' ? 'app app-fill' : 'app'}>
        <Header />
        <VerifyBanner />
        <main id="main" tabIndex={-1} className={location.pathname === '/lobby' ? 'main-fill' : undefined}>
          <Outlet />
        </main>
        {user && (
          <Suspense fallback={null}>
            <ToastArea />
          </Suspense>
        )}
        <LiveHub />
      </div>
    </>
  );
}
