// Primary.jsx: the "primary project" shortcut: opens the user's primary
// project (GET /api/projects/primary), or says there is none.
import { useEffect, useState } from 'react';
import { projects } from '../api.js';
import { Link, navigate } from '../router.jsx';

export default function PrimaryPage() {
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    projects
      .primary()
      .then((data) => live && navigate(`/projects/${data.project.id}`, { replace: true }))
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, []);
  if (!error) return <p className="muted loading-line">Opening your primary project…</p>;
  return (
    <section className="page">
      <h1>Primary project</h1>
      <p>
        {error.code === 'no_primary_project'
          ? 'You have no primary project yet. Open a project and choose “Mark as primary”.'
          : error.message}
      </p>
      <p>
        <Link to="/projects">Go to your projects</Link>
      </p>
    </section>
  );
}
