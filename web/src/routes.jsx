// routes.jsx: the route table (React Router's data router: deep links,
// history, blockers for unsaved edits). Pages a stranger or every user needs
// are in the first load: the shell and the pages before a session; the
// signed-in pages, settings, admin and the System page (with its chart
// library) load on demand, each its own chunk.
import { Navigate, Outlet, ScrollRestoration, createBrowserRouter, useLocation } from 'react-router';
import { ConfirmProvider } from './components/Confirm.jsx';
import { Loading } from './components/UI.jsx';
import AppShell from './layout/AppShell.jsx';
import { SessionProvider, loginPath, nextPath, useSession } from './session.jsx';
import { ForgotPasswordPage, LoginPage, ResetPasswordPage, SignupPage, VerifyEmailPage } from './pages/auth/Auth.jsx';
import NotFoundPage, { NotAllowedPage, RouteError } from './pages/NotFound.jsx';

function Root() {
  return (
    <SessionProvider>
      <ConfirmProvider>
        <AppShell />
        <ScrollRestoration />
      </ConfirmProvider>
    </SessionProvider>
  );
}

function Home() {
  const { user, ready } = useSession();
  if (!ready) return <Loading />;
  return <Navigate to={user ? '/projects' : '/login'} replace />;
}

function GuestOnly() {
  const { user, ready } = useSession();
  const { search } = useLocation();
  if (!ready) return <Loading />;
  if (user) return <Navigate to={nextPath(search)} replace />;
  return <Outlet />;
}

function RequireUser() {
  const { user, ready, exit } = useSession();
  const { pathname, search } = useLocation();
  if (!ready) return <Loading />;
  if (!user) return <Navigate to={exit || loginPath(pathname + search)} replace />;
  return <Outlet />;
}

function RequireAdmin() {
  const { user } = useSession();
  if (user.role !== 'admin') return <NotAllowedPage />;
  return <Outlet />;
}

// the signed-in pages load on demand too: a stranger's first load is the login page's
const page = (load) => () => load().then((m) => ({ Component: m.default }));
const settings = (name) => () => import('./pages/settings/Settings.jsx').then((m) => ({ Component: m[name] }));
const admin = (name) => () => import('./pages/admin/Admin.jsx').then((m) => ({ Component: m[name] }));

export const router = createBrowserRouter([
  {
    element: <Root />,
    errorElement: <RouteError />,
    HydrateFallback: Loading,
    children: [
      { index: true, element: <Home /> },
      {
        element: <GuestOnly />,
        children: [
          { path: 'login', element: <LoginPage /> },
          { path: 'signup', element: <SignupPage /> },
          { path: 'forgot-password', element: <ForgotPasswordPage /> },
        ],
      },
      { path: 'reset-password', element: <ResetPasswordPage /> },
      { path: 'verify-email', element: <VerifyEmailPage /> },
      {
        element: <RequireUser />,
        children: [
          { path: 'projects', lazy: page(() => import('./pages/Projects.jsx')) },
          { path: 'projects/:id', lazy: page(() => import('./pages/Project.jsx')) },
          { path: 'primary', lazy: page(() => import('./pages/Primary.jsx')) },
          { path: 'lobby', lazy: page(() => import('./pages/Lobby.jsx')) },
          {
            path: 'settings',
            lazy: settings('SettingsLayout'),
            children: [
              { index: true, element: <Navigate to="profile" replace /> },
              { path: 'profile', lazy: settings('ProfilePage') },
              { path: 'email', lazy: settings('EmailPage') },
              { path: 'password', lazy: settings('PasswordPage') },
              { path: 'sessions', lazy: settings('SessionsPage') },
              { path: 'two-factor', lazy: settings('TwoFactorPage') },
              { path: 'delete-account', lazy: settings('DeleteAccountPage') },
            ],
          },
          {
            path: 'admin',
            element: <RequireAdmin />,
            children: [
              {
                lazy: admin('AdminLayout'),
                children: [
                  { index: true, element: <Navigate to="users" replace /> },
                  { path: 'users', lazy: admin('UsersPage') },
                  { path: 'projects', lazy: admin('AdminProjectsPage') },
                  {
                    path: 'system',
                    lazy: () => import('./pages/admin/System.jsx').then((m) => ({ Component: m.default })),
                  },
                ],
              },
            ],
          },
        ],
      },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
]);
