// Admin.jsx: the admin's pages (loaded on demand, admins only; the API
// refuses everyone else anyway): Users (search by email, role and
// disable/enable, each confirmed, never "Disable" on one's own row) and
// Projects (every project, newest first, searchable, with owner names and
// internal notes editable in place). The System page is System.jsx.
import { useEffect, useRef, useState } from 'react';
import { Link, NavLink, Outlet } from 'react-router';
import { useInfiniteQuery, useQueries, useQuery, useQueryClient } from '@tanstack/react-query';
import { Activity, FolderKanban, Search, Users } from 'lucide-react';
import { accounts, projects } from '../../api.js';
import { useConfirm } from '../../components/Confirm.jsx';
import { FormError } from '../../components/Field.jsx';
import LoaderButton from '../../components/LoaderButton.jsx';
import { toast } from '../../components/toast.js';
import { EmptyState, Loading, ShowMore, SortSelect, StateBadge } from '../../components/UI.jsx';
import { humanError } from '../../lib/errors.js';
import { ago, readAll, searchAndSort } from '../../lib/lists.js';
import { useTitle } from '../../lib/store.js';
import { useSession } from '../../session.jsx';
import { notesProblem } from '../../validate.js';

export function AdminLayout() {
  return (
    <section className="page admin">
      <h1>Admin</h1>
      <nav aria-label="Admin" className="route-tabs">
        <NavLink to="/admin/users">
          <Users aria-hidden="true" size={16} /> Users
        </NavLink>
        <NavLink to="/admin/projects">
          <FolderKanban aria-hidden="true" size={16} /> Projects
        </NavLink>
        <NavLink to="/admin/system">
          <Activity aria-hidden="true" size={16} /> System
        </NavLink>
      </nav>
      <Outlet />
    </section>
  );
}

/** The value after the user stopped typing for `ms`. */
function useDebounced(value, ms = 300) {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

function SearchBox({ id, label, value, onChange, placeholder }) {
  return (
    <div className="search-box">
      <Search aria-hidden="true" size={16} />
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <input id={id} type="search" placeholder={placeholder} value={value} onChange={(e) => onChange(e.target.value)} />
    </div>
  );
}

// ---- users ----------------------------------------------------------------------

function UserRow({ u, me, onSaved }) {
  const confirm = useConfirm();
  const [busy, setBusy] = useState(false);
  const change = async (fields, ask, done) => {
    const yes = await confirm(ask);
    if (!yes) return false;
    setBusy(true);
    try {
      const data = await accounts.updateUser(u.id, fields);
      onSaved(data.user);
      toast(done);
      return true;
    } catch (err) {
      toast(humanError(err), { tone: 'error' });
      return false;
    } finally {
      setBusy(false);
    }
  };
  const who = `${u.display_name} (${u.email})`;
  const onRole = (role) =>
    change(
      { role },
      {
        title: role === 'admin' ? 'Make this user an admin?' : 'Remove admin rights?',
        body:
          role === 'admin'
            ? `${who} will see every project, its internal notes and every user, and can change them.`
            : `${who} will no longer see the admin pages.`,
        confirmLabel: role === 'admin' ? 'Make admin' : 'Remove admin rights',
        danger: role !== 'admin',
      },
      role === 'admin' ? `${u.display_name} is now an admin` : `${u.display_name} is no longer an admin`,
    );
  const onDisable = () =>
    change(
      { disabled: !u.disabled },
      u.disabled
        ? { title: 'Enable this account?', body: `${who} will be able to log in again.`, confirmLabel: 'Enable' }
        : {
            title: 'Disable this account?',
            body: `${who} is logged out everywhere within seconds and cannot log in until enabled again.`,
            confirmLabel: 'Disable account',
            danger: true,
          },
      u.disabled ? `${u.display_name} can log in again` : `${u.display_name} is disabled and logged out`,
    );
  const roleId = `role-${u.id}`;
  const self = u.id === me;
  return (
    <li className="card admin-row user-row" data-user-id={u.id}>
      <div className="user-who">
        <span className="avatar" aria-hidden="true">
          {(u.display_name || '?').trim().charAt(0).toUpperCase()}
        </span>
        <div>
          <strong>{u.display_name}</strong> {self && <span className="badge">You</span>}{' '}
          {u.disabled && <span className="badge badge-disabled">Disabled</span>}{' '}
          {u.mfa_enabled && <span className="badge badge-ok">2FA</span>}
          <span className="muted small user-email">
            {u.email} · joined {ago(u.created_at)}
          </span>
        </div>
      </div>
      <div className="user-controls">
        <label htmlFor={roleId} className="sr-only">
          Role of {u.email}
        </label>
        <select id={roleId} value={u.role} disabled={busy || self} onChange={(e) => onRole(e.target.value)}>
          <option value="user">User</option>
          <option value="admin">Admin</option>
        </select>
        {!self && (
          <button type="button" className={`btn btn-small ${u.disabled ? '' : 'btn-danger-ghost'}`} onClick={onDisable} disabled={busy}>
            {u.disabled ? 'Enable' : 'Disable'}
          </button>
        )}
      </div>
    </li>
  );
}

export function UsersPage() {
  useTitle('Users · Admin');
  const { user } = useSession();
  const queryClient = useQueryClient();
  const [query, setQuery] = useState('');
  const prefix = useDebounced(query.trim());
  const list = useInfiniteQuery({
    queryKey: ['admin', 'users', prefix],
    queryFn: ({ pageParam }) => accounts.users({ limit: 50, cursor: pageParam, email_prefix: prefix }),
    initialPageParam: null,
    getNextPageParam: (last) => last.next_cursor,
  });
  const users = list.data ? list.data.pages.flatMap((p) => p.users) : [];
  const onSaved = (u) =>
    queryClient.setQueryData(['admin', 'users', prefix], (d) =>
      d && { ...d, pages: d.pages.map((p) => ({ ...p, users: p.users.map((x) => (x.id === u.id ? u : x)) })) },
    );
  return (
    <section aria-labelledby="admin-users" className="admin-section">
      <h2 id="admin-users" className="sr-only">
        Users
      </h2>
      <div className="toolbar" role="search">
        <SearchBox id="user-search" label="Email starts with" placeholder="Search by email…" value={query} onChange={setQuery} />
      </div>
      <FormError>{list.error}</FormError>
      {list.isPending && <Loading />}
      {list.data && users.length === 0 && <EmptyState icon={Users} title={prefix ? `No user's email starts with “${prefix}”.` : 'No users yet.'} />}
      <ul className="admin-list">
        {users.map((u) => (
          <UserRow key={u.id} u={u} me={user.id} onSaved={onSaved} />
        ))}
      </ul>
      {list.hasNextPage && (
        <div className="more">
          <LoaderButton onClick={() => list.fetchNextPage()}>Load more users</LoaderButton>
        </div>
      )}
    </section>
  );
}

// ---- projects ---------------------------------------------------------------------

function NotesEditor({ project, onSaved }) {
  const [notes, setNotes] = useState(project.internal_notes || '');
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const base = useRef(project);
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
      base.current = data.project;
      onSaved(data.project);
      setError(null);
      setSaved(true);
    } catch (err) {
      if (err.code === 'version_conflict') {
        try {
          const fresh = await projects.get(project.id);
          onSaved(fresh.project);
        } catch {
          /* the message below says enough */
        }
        setError('Someone changed this project meanwhile; it was reloaded. Save again to apply these notes.');
      } else setError(humanError(err));
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
          setError(null);
        }}
        aria-invalid={error ? true : undefined}
      />
      <div className="notes-actions">
        <LoaderButton className="btn-small" onClick={save} disabled={!dirty}>
          Save notes
        </LoaderButton>
        {saved && !dirty && !error && (
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

const SHOW = 20;

export function AdminProjectsPage() {
  useTitle('Projects · Admin');
  const queryClient = useQueryClient();
  const [query, setQuery] = useState('');
  const [sort, setSort] = useState('newest');
  const [shown, setShown] = useState(SHOW);
  const all = useQuery({
    queryKey: ['projects', 'all'],
    queryFn: () => readAll((p) => projects.list({ ...p, all: true }), 'projects', { maxPages: 30 }),
  });
  const items = all.data ? searchAndSort(all.data.items, query, sort) : [];
  const visible = items.slice(0, shown);
  const owners = [...new Set(visible.map((p) => p.owner_id))];
  const ownerQueries = useQueries({
    queries: owners.map((id) => ({ queryKey: ['admin', 'user', id], queryFn: () => accounts.user(id), staleTime: 300000, retry: false })),
  });
  const ownerName = {};
  owners.forEach((id, i) => {
    const q = ownerQueries[i];
    ownerName[id] = q && q.data ? q.data.user : null;
  });
  const onSaved = (p) =>
    queryClient.setQueryData(['projects', 'all'], (d) => d && { ...d, items: d.items.map((x) => (x.id === p.id ? p : x)) });
  return (
    <section aria-labelledby="admin-projects" className="admin-section">
      <h2 id="admin-projects" className="sr-only">
        All projects
      </h2>
      <div className="toolbar" role="search">
        <SearchBox
          id="admin-project-search"
          label="Search projects"
          placeholder="Search by name or description…"
          value={query}
          onChange={(v) => {
            setQuery(v);
            setShown(SHOW);
          }}
        />
        <SortSelect value={sort} onChange={setSort} label="Sort projects" />
      </div>
      <FormError>{all.error}</FormError>
      {all.isPending && <Loading>Loading every project…</Loading>}
      {all.data && !all.data.complete && (
        <p className="muted small">Showing the first {all.data.items.length} projects the API lists.</p>
      )}
      {all.data && items.length === 0 && <EmptyState icon={FolderKanban} title={query ? 'No project matches.' : 'No projects yet.'} />}
      <ul className="admin-list">
        {visible.map((p) => {
          const o = ownerName[p.owner_id];
          return (
            <li key={p.id} className="card admin-row" data-project-id={p.id}>
              <div className="admin-row-head">
                <Link to={`/projects/${p.id}`} className="project-link" dir="auto">
                  {p.name}
                </Link>
                <StateBadge state={p.state} />
                <span className="muted small owner">
                  {o ? (
                    <>
                      by {o.display_name} <span className="owner-email">({o.email})</span>
                    </>
                  ) : (
                    `by user ${p.owner_id}`
                  )}{' '}
                  · {ago(p.created_at)}
                </span>
              </div>
              <NotesEditor project={p} onSaved={onSaved} />
            </li>
          );
        })}
      </ul>
      <ShowMore total={items.length} shown={shown} onMore={() => setShown((n) => n + SHOW)} />
    </section>
  );
}
