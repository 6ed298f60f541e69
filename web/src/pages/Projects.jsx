// Projects.jsx: the user's projects, a page at a time, and "New project" in a
// Modal.
import { useState } from 'react';
import { projects } from '../api.js';
import { FormError, useForm } from '../components/Field.jsx';
import LoaderButton, { useSubmit } from '../components/LoaderButton.jsx';
import Modal from '../components/Modal.jsx';
import ProjectFields from '../components/ProjectForm.jsx';
import { Link, navigate } from '../router.jsx';
import { useSession } from '../session.jsx';
import usePaged from '../usePaged.js';
import { projectRules, stateLabel } from '../validate.js';

const PAGE_SIZE = 10;
const fetchProjects = (query) => projects.list(query);

function NewProjectModal({ onClose }) {
  const form = useForm({ name: '', description: '', state: 'planning' }, projectRules);
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    try {
      const data = await projects.create(form.values);
      navigate(`/projects/${data.project.id}`);
    } catch (err) {
      form.fail(err);
    }
  });
  return (
    <Modal
      title="New project"
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn btn-ghost" onClick={onClose}>
            Cancel
          </button>
          <LoaderButton type="submit" form="new-project" className="btn-primary" loading={busy}>
            Create project
          </LoaderButton>
        </>
      }
    >
      <form id="new-project" className="form" onSubmit={submit} noValidate>
        <ProjectFields form={form} />
      </form>
    </Modal>
  );
}

export function StateBadge({ state }) {
  return <span className={`badge badge-${state}`}>{stateLabel(state)}</span>;
}

export default function ProjectsPage() {
  const { user } = useSession();
  const { items, cursor, error, loaded, loadMore } = usePaged(fetchProjects, 'projects', PAGE_SIZE);
  const [creating, setCreating] = useState(false);

  return (
    <section className="page">
      <div className="page-head">
        <h1>Projects</h1>
        <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
          New project
        </button>
      </div>
      <FormError>{error}</FormError>
      {!loaded && <p className="muted">Loading…</p>}
      {loaded && items.length === 0 && !error && (
        <div className="card empty">
          <p>No projects yet.</p>
          <p className="muted">Create one to plan it, track its state and talk about it with your team.</p>
        </div>
      )}
      {items.length > 0 && (
        <ul className="project-list" aria-label="Your projects">
          {items.map((p) => (
            <li key={p.id} className="card project-item">
              <div className="project-item-main">
                <Link to={`/projects/${p.id}`} className="project-link">
                  {p.name}
                </Link>
                {user.primary_project_id === p.id && <span className="badge badge-primary">Primary</span>}
                {p.description && <p className="muted clamp">{p.description}</p>}
              </div>
              <StateBadge state={p.state} />
            </li>
          ))}
        </ul>
      )}
      {cursor && (
        <div className="more">
          <LoaderButton onClick={loadMore}>Load more</LoaderButton>
        </div>
      )}
      {creating && <NewProjectModal onClose={() => setCreating(false)} />}
    </section>
  );
}
