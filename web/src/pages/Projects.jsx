// Projects.jsx: the user's projects, newest first, with search and sort, 20
// at a time ("Show more"); "New project" in a dialog (created once however
// often the request is retried: an Idempotency-Key per submission).
import { useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { FolderKanban, Plus, Search, Star } from 'lucide-react';
import { projects, randomId } from '../api.js';
import Dialog from '../components/Dialog.jsx';
import { FormError, useForm } from '../components/Field.jsx';
import LoaderButton, { useSubmit } from '../components/LoaderButton.jsx';
import ProjectFields from '../components/ProjectForm.jsx';
import { toast } from '../components/toast.js';
import { EmptyState, Loading, PageHeader, ShowMore, SortSelect, StateBadge } from '../components/UI.jsx';
import { ago, readAll, searchAndSort } from '../lib/lists.js';
import { useTitle } from '../lib/store.js';
import { useSession } from '../session.jsx';
import { projectRules } from '../validate.js';

const SHOW = 20;

export function useMyProjects() {
  return useQuery({
    queryKey: ['projects', 'mine'],
    queryFn: () => readAll((p) => projects.list(p), 'projects'),
  });
}

export function NewProjectDialog({ onClose }) {
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const form = useForm({ name: '', description: '', state: 'planning' }, projectRules);
  const key = useRef({ body: null, key: null });
  const [submit, busy] = useSubmit(async () => {
    if (!form.validate()) return;
    const body = { ...form.values, name: form.values.name.trim() };
    const text = JSON.stringify(body);
    if (key.current.body !== text) key.current = { body: text, key: randomId() }; // the same submission retried keeps its key
    try {
      const data = await projects.create(body, key.current.key);
      queryClient.invalidateQueries({ queryKey: ['projects'] });
      queryClient.setQueryData(['project', data.project.id], data);
      toast('Project created', { description: data.project.name });
      navigate(`/projects/${data.project.id}`);
    } catch (err) {
      form.fail(err);
    }
  });
  return (
    <Dialog
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
        <ProjectFields form={form} autoFocus />
      </form>
    </Dialog>
  );
}

export default function ProjectsPage() {
  useTitle('Projects');
  const { user } = useSession();
  const { data, error, isPending } = useMyProjects();
  const [creating, setCreating] = useState(false);
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState('newest');
  const [shown, setShown] = useState(SHOW);
  const all = data ? data.items : [];
  const list = searchAndSort(all, query, sort);
  const newButton = (
    <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
      <Plus aria-hidden="true" size={16} />
      New project
    </button>
  );
  return (
    <section className="page">
      <PageHeader
        title="Projects"
        subtitle={data ? `${all.length}${data.complete ? '' : '+'} project${all.length === 1 ? '' : 's'}` : null}
        actions={newButton}
      />
      <FormError>{error}</FormError>
      {data && !data.complete && (
        <p className="muted small" role="status">
          Showing your {all.length} oldest projects: search and sorting see only these.
        </p>
      )}
      {isPending && <Loading />}
      {data && all.length === 0 && (
        <EmptyState icon={FolderKanban} title="No projects yet." action={newButton}>
          Create one to plan it, track its state and talk it through with your team.
        </EmptyState>
      )}
      {all.length > 0 && (
        <>
          <div className="toolbar" role="search">
            <div className="search-box">
              <Search aria-hidden="true" size={16} />
              <label htmlFor="project-search" className="sr-only">
                Search projects
              </label>
              <input
                id="project-search"
                type="search"
                placeholder="Search by name or description"
                value={query}
                onChange={(e) => {
                  setQuery(e.target.value);
                  setShown(SHOW);
                }}
              />
            </div>
            <label className="sort">
              <span className="sr-only">Sort</span>
              <SortSelect value={sort} onChange={setSort} label="Sort projects" />
            </label>
          </div>
          {list.length === 0 ? (
            <EmptyState icon={Search} title={`No project matches “${query.trim()}”.`}>
              <button type="button" className="btn btn-link" onClick={() => setQuery('')}>
                Clear the search
              </button>
            </EmptyState>
          ) : (
            <ul className="project-list" aria-label="Your projects">
              {list.slice(0, shown).map((p) => (
                <li key={p.id} className="card project-item">
                  <div className="project-item-main">
                    <Link to={`/projects/${p.id}`} className="project-link" dir="auto">
                      {p.name}
                    </Link>
                    {user.primary_project_id === p.id && (
                      <span className="badge badge-primary">
                        <Star aria-hidden="true" size={12} /> Primary
                      </span>
                    )}
                    {p.description && <p className="muted clamp" dir="auto">{p.description}</p>}
                  </div>
                  <div className="project-item-side">
                    <StateBadge state={p.state} />
                    <span className="muted small">Updated {ago(p.updated_at)}</span>
                  </div>
                </li>
              ))}
            </ul>
          )}
          <ShowMore total={list.length} shown={shown} onMore={() => setShown((n) => n + SHOW)} />
        </>
      )}
      {creating && <NewProjectDialog onClose={() => setCreating(false)} />}
    </section>
  );
}
