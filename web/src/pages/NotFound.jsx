// NotFound.jsx: a path no route knows.
import { Link } from '../router.jsx';

export default function NotFoundPage() {
  return (
    <section className="page not-found">
      <h1>Page not found</h1>
      <p>There is nothing at this address. It may have moved, or the link may be mistyped.</p>
      <p>
        <Link to="/">Go to the start page</Link>
      </p>
    </section>
  );
}
