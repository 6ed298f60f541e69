// NotFound.jsx: a path no route knows, a page the user may not see, and a
// crash of a page (the router's error element) in words a person reads.
import { Link, useRouteError } from 'react-router';
import { Compass, ShieldX, TriangleAlert } from 'lucide-react';
import { EmptyState } from '../components/UI.jsx';
import { useTitle } from '../lib/store.js';

export default function NotFoundPage() {
  useTitle('Not found');
  return (
    <section className="page not-found">
      <h1>Page not found</h1>
      <EmptyState icon={Compass} title="There is nothing at this address." action={<Link to="/" className="btn btn-primary">Go to the start page</Link>}>
        It may have moved, or the link may be mistyped.
      </EmptyState>
    </section>
  );
}

export function NotAllowedPage() {
  useTitle('Not allowed');
  return (
    <section className="page">
      <h1>Not allowed</h1>
      <EmptyState icon={ShieldX} title="This page is for admins only." action={<Link to="/projects" className="btn btn-primary">Go to your projects</Link>} />
    </section>
  );
}

export function RouteError() {
  const err = useRouteError();
  // a chunk that no longer exists (a new release was deployed): load the new one
  const stale = err && /dynamically imported module|Importing a module script failed/i.test(String(err.message || err));
  return (
    <main id="main" className="page">
      <h1>Something went wrong</h1>
      <EmptyState
        icon={TriangleAlert}
        title={stale ? 'Pilotlight was updated while this page was open.' : 'This page could not be shown.'}
        action={
          <button type="button" className="btn btn-primary" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        }
      />
    </main>
  );
}
