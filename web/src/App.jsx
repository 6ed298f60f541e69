// App.jsx: the layout (header, navigation, main) and the route table.
import { useEffect } from 'react';
import { Link, match, navigate, useLocation } from './router.jsx';
import { loginPath, useSession } from './session.jsx';
import LoaderButton from './components/LoaderButton.jsx';
import { LoginPage, SignupPage } from './pages/Auth.jsx';
import ProjectsPage from './pages/Projects.jsx';
import ProjectPage from './pages/Project.jsx';
import PrimaryPage from './pages/Primary.jsx';
import LobbyPage from './pages/Lobby.jsx';
import AdminPage from './pages/Admin.jsx';
import NotFoundPage from './pages/NotFound.jsx';

// auth: 'guest' (signed-out only), 'user', 'admin'; null: anyone
const ROUTES = [
  { path: '/', auth: null, redirect: (user) => (user ? '/projects' : '/login') },
  { path: '/login', auth: 'guest', page: LoginPage, title: 'Log in' },
  { path: '/signup', auth: 'guest', page: SignupPage, title: 'Sign up' },
  { path: '/projects', auth: 'user', page: ProjectsPage, title: 'Projects' },
  { path: '/projects/:id', auth: 'user', page: ProjectPage, title: 'Project' },
  { path: '/primary', auth: 'user', page: PrimaryPage, title: 'Primary project' },
  { path: '/lobby', auth: 'user', page: LobbyPage, title: 'Lobby' },
  { path: '/admin', auth: 'admin', page: AdminPage, title: 'Admin' },
];

function resolve(path) {
  for (const r of ROUTES) {
    const params = match(r.path, path);
    if (params) return { route: r, params };
  }
  return { route: { auth: null, page: NotFoundPage, title: 'Not found' }, params: {} };
}

/** Where the route sends this visitor instead, or null. */
function redirectFor(route, user) {
  if (route.redirect) return route.redirect(user);
  if (route.auth === 'guest' && user) return new URLSearchParams(window.location.search).get('next') || '/projects';
  if ((route.auth === 'user' || route.auth === 'admin') && !user) return loginPath();
  return null;
}

function Header() {
  const { user, logout } = useSession();
  const { path } = useLocation();
  const current = (p) => (path === p || (p !== '/' && path.startsWith(`${p}/`)) ? 'page' : undefined);
  return (
    <header className="topbar">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Link to="/" className="brand">
        <span className="brand-mark" aria-hidden="true" />
        Pilotlight
      </Link>
      <nav aria-label="Main">
        {user ? (
          <ul className="nav">
            <li>
              <Link to="/projects" aria-current={current('/projects')}>
                Projects
              </Link>
            </li>
            <li>
              <Link to="/primary" aria-current={current('/primary')}>
                Primary
              </Link>
            </li>
            <li>
              <Link to="/lobby" aria-current={current('/lobby')}>
                Lobby
              </Link>
            </li>
            {user.role === 'admin' && (
              <li>
                <Link to="/admin" aria-current={current('/admin')}>
                  Admin
                </Link>
              </li>
            )}
          </ul>
        ) : (
          <ul className="nav">
            <li>
              <Link to="/login" aria-current={current('/login')}>
                Log in
              </Link>
            </li>
            <li>
              <Link to="/signup" aria-current={current('/signup')}>
                Sign up
              </Link>
            </li>
          </ul>
        )}
      </nav>
      {user && (
        <div className="whoami">
          <span className="whoami-name" title={user.email}>
            {user.display_name}
          </span>
          <LoaderButton className="btn-ghost btn-small" onClick={logout}>
            Log out
          </LoaderButton>
        </div>
      )}
    </header>
  );
}

export default function App() {
  const { user, ready } = useSession();
  const { path } = useLocation();
  const { route, params } = resolve(path);
  const target = ready ? redirectFor(route, user) : null;

  useEffect(() => {
    if (target) navigate(target, { replace: true });
  }, [target]);
  useEffect(() => {
    document.title = route.title ? `${route.title} · Pilotlight` : 'Pilotlight';
  }, [route.title]);

  let content;
  if (!ready || target) content = <p className="muted loading-line">Loading…</p>;
  else if (route.auth === 'admin' && user.role !== 'admin')
    content = (
      <section className="page">
        <h1>Not allowed</h1>
        <p>This page is for admins only.</p>
      </section>
    );
  else {
    const Page = route.page;
    content = <Page key={path} params={params} />;
  }

  return (
    <div className="app">
      <Header />
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}
