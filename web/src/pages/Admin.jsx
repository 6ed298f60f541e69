// Admin.jsx: every project with its internal notes editable in place, and
// every user with role change and disable. Only admins see the link; the API
// refuses these calls to anyone else anyway.
import { useCallback, useState } from 'react';
import { accounts, projects } from '../api.js';
import { FormError } from '../components/Field.jsx';
import LoaderButton from '../components/LoaderButton.jsx';
import { Link } from '../router.jsx';
import { useSession } from '../session.jsx';
import { notesProblem } from '../validate.js';
import usePaged from '../usePaged.js';
import { StateBadge } from './Projects.jsx';

const PAGE_SIZE = 50;

function NotesEditor({ project, onSaved }) {
  const [notes, setNotes] = useState(project.internal_notes || '');
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const dirty = notes !== (project.internal_notes || '');
  const save = async () => {
    setSaved(false);
    const problem = notesProblem(notes);
    if (problem) {
      setError(problem);
      return;
    }
    try {
      const data = await projects.update(project.id, project.version, { internal_notes: notes });
      onSaved(data.project);
      setError(null);
      setSaved(true);
    } catch (err) {
      if (err.code === 'version_conflict') {
        // someone changed the project: take its current version, keep the text typed here
        try {
          const fresh = await projects.get(project.id);
          onSaved({ ...fresh.project });
        } catch {
          /* the message below says enough */
        }
        setError(`${err.message} The project was reloaded; save again to apply these notes.`);
      } else setError(err.message);
    }
  };
  const id = `notes-${project.id}`;
  return (
    <div className="notes">
      <label htmlFor={id} className="sr-only">
        Internal notes for {project.name}
      </label>
      <textarea
        id={id}
        rows={2}
        value={notes}
        placeholder="Internal notes (admins only)"
        onChange={(e) => {
          setNotes(e.target.value);
          setSaved(false);
        }}
        aria-invalid={error ? true : undefined}
      />
      <div className="notes-actions">
        <LoaderButton className="btn-small" onClick={save} disabled={!dirty}>
          Save notes
        </LoaderButton>
        {saved && !dirty && (
          <span className="saved" role="status">
            Saved
          </span>
        )}
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function AdminProjects() {
  const fetchPage = useCallback((p) => projects.list({ ...p, all: true }), []);
  const list = usePaged(fetchPage, 'projects', PAGE_SIZE);
  return (
    <section className="admin-section" aria-labelledby="admin-projects">
      <h2 id="admin-projects">All projects</h2>
      <FormError>{list.error}</FormError>
      {list.loaded && list.items.length === 0 && <p className="muted">No projects yet.</p>}
      <ul className="admin-list">
        {list.items.map((p) => (
          <li key={p.id} className="card admin-row" data-project-id={p.id}>
            <div className="admin-row-head">
              <Link to={`/projects/${p.id}`} className="project-link">
                {p.name}
              </Link>
              <StateBadge state={p.state} />
              <span className="muted small">owner #{p.owner_id}</span>
            </div>
            <NotesEditor project={p} onSaved={list.replace} />
          </li>
        ))}
      </ul>
      {list.cursor && (
        <div className="more">
          <LoaderButton onClick={list.loadMore}>Load more projects</LoaderButton>
        </div>
      )}
    </section>
  );
}

function UserRow({ u, me, onSaved }) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const change = async (fields) => {
    setBusy(true);
    setError(null);
    try {
      const data = await accounts.updateUser(u.id, fields);
      onSaved(data.user);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  const roleId = `role-${u.id}`;
  return (
    <li className="card admin-row user-row" data-user-id={u.id}>
      <div className="user-who">
        <strong>{u.display_name}</strong>
        {u.id === me && <span className="badge">You</span>}
        {u.disabled && <span className="badge badge-disabled">Disabled</span>}
        <span className="muted small user-email">{u.email}</span>
      </div>
      <div className="user-controls">
        <label htmlFor={roleId} className="sr-only">
          Role of {u.email}
        </label>
        <select id={roleId} value={u.role} disabled={busy} onChange={(e) => change({ role: e.target.value })}>
          <option value="user">User</option>
          <option value="admin">Admin</option>
        </select>
        <LoaderButton
          className={`btn-small ${u.disabled ? '' : 'btn-danger'}`}
          onClick={() => change({ disabled: !u.disabled })}
          disabled={busy}
        >
          {u.disabled ? 'Enable' : 'Disable'}
        </LoaderButton>
      </div>
      {error && (
        <p className="field-error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}

function AdminUsers() {
  const { user } = useSession();
  const [query, setQuery] = useState('');
  const [prefix, setPrefix] = useState('');
  const fetchPage = useCallback((p) => accounts.users({ ...p, email_prefix: prefix }), [prefix]);
  const list = usePaged(fetchPage, 'users', PAGE_SIZE);
  return (
    <section className="admin-section" aria-labelledby="admin-users">
      <h2 id="admin-users">Users</h2>
      <form
        className="search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setPrefix(query.trim());
        }}
      >
        <label htmlFor="user-search" className="sr-only">
          Email starts with
        </label>
        <input
          id="user-search"
          type="search"
          placeholder="Email starts with…"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        <button type="submit" className="btn">
          Search
        </button>
      </form>
      <FormError>{list.error}</FormError>
      {list.loaded && list.items.length === 0 && <p className="muted">No users found.</p>}
      <ul className="admin-list">
        {list.items.map((u) => (
          <UserRow key={u.id} u={u} me={user.id} onSaved={list.replace} />
        ))}
      </ul>
      {list.cursor && (
        <div className="more">
          <LoaderButton onClick={list.loadMore}>Load more users</LoaderButton>
        </div>
      )}
    </section>
  );
}

export default function AdminPage() {
  return (
    <section className="page">
      <h1>Admin</h1>
      <div className="admin-grid">
        <AdminProjects />
        <AdminUsers />
      </div>
    </section>
  );
}
