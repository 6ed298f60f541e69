// session.jsx: who is signed in. On start the app asks for a new access token
// with the refresh cookie (only if this browser has logged in: see api.js);
// login (with its second step when MFA is on), logout and the end of a
// session go through here. When a session ends anywhere (a refresh refused:
// the account disabled, logged out everywhere, the session ended from another
// device; or a logout in another tab), every open tab of this browser goes
// to the login page with the reason, through a BroadcastChannel.
// The user is read again (GET me) on every page change and every minute, so
// a role given or taken shows without a reload.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useLocation, useNavigate } from 'react-router';
import { accounts, hasSessionHint, onSessionEnded, refresh, setAccessToken, tokenClaims } from './api.js';

const SessionContext = createContext(null);

/** /login?next=<where the user was going>&reason=<why they are here> */
export function loginPath(next = window.location.pathname + window.location.search, reason) {
  const q = new URLSearchParams();
  if (next && next !== '/' && !/^\/(login|signup|forgot-password|reset-password)/.test(next)) q.set('next', next);
  if (reason) q.set('reason', reason);
  const s = q.toString();
  return s ? `/login?${s}` : '/login';
}

/**
 * Where ?next= sends a user after logging in or signing up: a path of this
 * site only. The browser's own URL parser is the judge: "/\evil.example" or
 * "/<tab>/evil.example", which browsers read as another host (and React
 * Router then refuses with a page error), fall back to /projects as
 * "//evil.example" does.
 */
export function nextPath(search) {
  const next = new URLSearchParams(search).get('next');
  if (!next || !next.startsWith('/')) return '/projects';
  try {
    const url = new URL(next, window.location.origin);
    if (url.origin !== window.location.origin) return '/projects';
    return url.pathname + url.search + url.hash;
  } catch {
    return '/projects';
  }
}

function channel() {
  try {
    return typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('pilotlight-session');
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function SessionProvider({ children }) {
  const [user, setUser] = useState(null);
  const [ready, setReady] = useState(false);
  const navigate = useNavigate();
  const location = useLocation();
  const queryClient = useQueryClient();
  const bc = useRef(null);

  // where the session's end sends this tab: the signed-in pages' guard
  // (RequireUser) goes there too, so the reason is never lost to its own redirect
  const [exit, setExit] = useState(null);
  const leave = useCallback(
    (to, replace) => {
      setExit(to);
      setAccessToken(null);
      setUser(null);
      queryClient.clear();
      navigate(to, { replace });
    },
    [navigate, queryClient],
  );

  const end = useCallback(
    (reason, { broadcast = true } = {}) => {
      if (broadcast && bc.current) bc.current.postMessage({ type: 'ended', reason });
      // an ending the user chose (deleted, logged out everywhere, a new password) keeps no page to come back to
      const chosen = ['deleted', 'everywhere', 'reset', 'logout'].includes(reason);
      const here = window.location.pathname + window.location.search;
      leave(chosen ? `/login?reason=${reason}` : loginPath(here, reason), true);
    },
    [leave],
  );

  // start: the refresh cookie, retried while the network is away
  useEffect(() => {
    let live = true;
    (async () => {
      if (!hasSessionHint()) {
        setReady(true);
        return;
      }
      for (let i = 0; live; i++) {
        try {
          const data = await refresh();
          if (!live) return;
          setUser(data.ended ? null : data.user);
          setReady(true);
          return;
        } catch {
          await sleep(Math.min(1000 * 2 ** i, 15000));
        }
      }
    })();
    return () => {
      live = false;
    };
  }, []);

  useEffect(() => {
    onSessionEnded((reason) => end(reason));
    bc.current = channel();
    if (!bc.current) return undefined;
    bc.current.onmessage = async (e) => {
      const msg = e.data || {};
      if (msg.type === 'ended') end(msg.reason === 'logout' ? 'elsewhere' : msg.reason, { broadcast: false });
      if (msg.type === 'login') {
        // another tab logged in: this one takes the session too
        const data = await refresh().catch(() => null);
        if (data && !data.ended) setUser(data.user);
      }
    };
    return () => {
      bc.current.close();
      bc.current = null;
    };
  }, [end]);

  // the user as the server has it now (role, name, email_verified)
  const me = useQuery({
    queryKey: ['me'],
    queryFn: accounts.me,
    enabled: !!user,
    refetchInterval: 60000,
    staleTime: 0,
  });
  const { refetch } = me;
  useEffect(() => {
    if (user) refetch();
  }, [location.pathname]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    const fresh = me.data && me.data.user;
    if (!fresh || !user) return;
    const claims = tokenClaims();
    // a new role (or a confirmed address) reaches the services with a new token: take it first
    const stale = claims && (claims.role !== fresh.role || claims.email_verified !== fresh.email_verified);
    const apply = () => {
      if (JSON.stringify(fresh) !== JSON.stringify(user)) setUser(fresh);
    };
    if (stale) refresh().then(apply, apply);
    else apply();
  }, [me.data]); // eslint-disable-line react-hooks/exhaustive-deps

  const finishLogin = useCallback(
    (data) => {
      if (data.mfa_required) return data;
      setExit(null);
      setUser(data.user);
      queryClient.setQueryData(['me'], { user: data.user });
      if (bc.current) bc.current.postMessage({ type: 'login' });
      return data;
    },
    [queryClient],
  );

  const login = useCallback(async (email, password) => finishLogin(await accounts.login(email, password)), [finishLogin]);
  const loginMfa = useCallback(async (ticket, code) => finishLogin(await accounts.loginMfa(ticket, code)), [finishLogin]);

  const logout = useCallback(async () => {
    await accounts.logout().catch(() => {});
    if (bc.current) bc.current.postMessage({ type: 'ended', reason: 'logout' });
    leave('/login?reason=logout', false);
  }, [leave]);

  const updateUser = useCallback(
    (u) => {
      setUser(u);
      queryClient.setQueryData(['me'], { user: u });
    },
    [queryClient],
  );

  const value = useMemo(
    () => ({ user, ready, exit, login, loginMfa, logout, setUser: updateUser, endSession: end }),
    [user, ready, exit, login, loginMfa, logout, updateUser, end],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession() {
  return useContext(SessionContext);
}
