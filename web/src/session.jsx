// session.jsx: who is signed in. On start the app asks for a new access token
// with the refresh cookie; login, signup and logout go through here, and a
// failed refresh anywhere (api.js) ends the session and sends the user to the
// login page, with the page they were on to come back to.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { accounts, onSessionEnded, refresh, setAccessToken } from './api.js';
import { navigate } from './router.jsx';

const SessionContext = createContext(null);

/** /login?next=<where the user was going> */
export function loginPath(next = window.location.pathname + window.location.search) {
  return next && next !== '/' && !next.startsWith('/login') && !next.startsWith('/signup')
    ? `/login?next=${encodeURIComponent(next)}`
    : '/login';
}

export function SessionProvider({ children }) {
  const [user, setUser] = useState(null);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    let live = true;
    refresh().then((data) => {
      if (!live) return;
      setUser(data ? data.user : null);
      setReady(true);
    });
    onSessionEnded(() => {
      setAccessToken(null);
      setUser(null);
      navigate(loginPath(), { replace: true });
    });
    return () => {
      live = false;
    };
  }, []);

  const login = useCallback(async (email, password) => {
    const data = await accounts.login(email, password);
    setUser(data.user);
    return data.user;
  }, []);

  const logout = useCallback(async () => {
    await accounts.logout();
    setUser(null);
    navigate('/login');
  }, []);

  const value = useMemo(() => ({ user, ready, login, logout, setUser }), [user, ready, login, logout]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession() {
  return useContext(SessionContext);
}
