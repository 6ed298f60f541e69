// router.jsx: a small client-side router on the History API. Routes are
// patterns like "/projects/:id"; nginx answers every such path with
// index.html, so a deep link or a reload lands on the same page.
import { createContext, useContext, useEffect, useState } from 'react';

const RouterContext = createContext(null);

export function navigate(to, { replace = false } = {}) {
  if (to === window.location.pathname + window.location.search) return;
  if (replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new Event('pl:navigate'));
}

function currentLocation() {
  return { path: window.location.pathname, search: window.location.search };
}

export function RouterProvider({ children }) {
  const [loc, setLoc] = useState(currentLocation);
  useEffect(() => {
    const update = () => {
      setLoc(currentLocation());
      window.scrollTo(0, 0);
    };
    window.addEventListener('popstate', update);
    window.addEventListener('pl:navigate', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('pl:navigate', update);
    };
  }, []);
  return <RouterContext.Provider value={loc}>{children}</RouterContext.Provider>;
}

export function useLocation() {
  return useContext(RouterContext);
}

/** The params of the first pattern that matches path, or null. */
export function match(pattern, path) {
  const p = pattern.split('/').filter(Boolean);
  const s = path.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}

/** An <a> that navigates without reloading (a modified click opens a tab as usual). */
export function Link({ to, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
