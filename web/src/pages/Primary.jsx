// Primary.jsx: the "primary project" shortcut: opens the user's primary
// project (GET /api/projects/primary), or says there is none and how to set one.
import { useEffect } from 'react';
import { Link, useNavigate } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { Star } from 'lucide-react';
import { projects } from '../api.js';
import { EmptyState, Loading, Notice } from '../components/UI.jsx';
import { humanError } from '../lib/errors.js';
import { useTitle } from '../lib/store.js';

export default function PrimaryPage() {
  useTitle('Primary project');
  const navigate = useNavigate();
  const { data, error } = useQuery({ queryKey: ['primary'], queryFn: projects.primary, staleTime: 0, gcTime: 0 });
  useEffect(() => {
    if (data) navigate(`/projects/${data.project.id}`, { replace: true });
  }, [data, navigate]);
  if (error && error.code === 'no_primary_project')
    return (
      <section className="page">
        <h1>Primary project</h1>
        <EmptyState
          icon={Star}
          title="You have no primary project yet."
          action={
            <Link to="/projects" className="btn btn-primary">
              Go to your projects
            </Link>
          }
        >
          Open a project and choose “Mark as primary”: this link then takes you straight to it.
        </EmptyState>
      </section>
    );
  if (error)
    return (
      <section className="page">
        <h1>Primary project</h1>
        <Notice tone="error">{humanError(error)}</Notice>
      </section>
    );
  return <Loading>Opening your primary project…</Loading>;
}
