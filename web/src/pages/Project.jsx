// Project.jsx: one project: edit name, description and state (sent with
// If-Match: a stale edit is refused with 412, and the page offers to reload
// or to overwrite), mark it as the primary project, delete it (confirmed),
// and its chat room. Wide screens show the details and the chat side by
// side; small ones show them as two tabs. Leaving with unsaved edits asks
// first. The layout is chosen when the page opens (see NARROW).
import { useEffect, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Tab, TabList, TabPanel, Tabs } from 'react-aria-components';
import { ArrowLeft, FolderX, Star, Trash2 } from 'lucide-react';
import { accounts, projects } from '../api.js';
import ChatRoom from '../chat/ChatRoom.jsx';
import { useConfirm } from '../components/Confirm.jsx';
import { useForm } from '../components/Field.jsx';
import LoaderButton, { useSubmit } from '../components/LoaderButton.jsx';
import ProjectFields from '../components/ProjectForm.jsx';
import { toast } from '../components/toast.js';
import { EmptyState, Loading, Notice, StateBadge, useUnsavedGuard } from '../components/UI.jsx';
import { humanError } from '../lib/errors.js';
import { ago } from '../lib/lists.js';
import { useTitle, useUnread } from '../lib/store.js';
import { useSession } from '../session.jsx';
import { projectRules } from '../validate.js';

const NARROW = '(max-width: 860px)';
const editable = (p) => ({ name: p.name, description: p.description, state: p.state });
const same = (a, b) => a.name === b.name && a.description === b.description && a.state === b.state;

function Details({ project, onChanged }) {
  const { user, setUser } = useSession();
  const navigate = useNavigate();
  const confirm = useConfirm();
  const queryClient = useQueryClient();
  const form = useForm(editable(project), projectRules);
  const { setValues } = form;
  const [base, setBase] = useState(project); // the version the form's edits apply to
  const [conflict, setConflict] = useState(null);
  const [savedVersion, setSavedVersion] = useState(null);
  const dirty = !same(form.values, editable(base));
  useUnsavedGuard(dirty);

  // a newer version read while nothing is edited replaces the form's
  useEffect(() => {
    if (project.version !== base.version && !dirty) {
      setBase(project);
      setValues(editable(project));
    }
  }, [project]); // eslint-disable-line react-hooks/exhaustive-deps

  const save = async (version) => {
    try {
      const data = await projects.update(project.id, version, form.values);
      queryClient.setQueryData(['project', project.id], data);
      queryClient.invalidateQueries({ queryKey: ['projects'] });
      setBase(data.project);
      setValues(editable(data.project));
      setConflict(null);
      setSavedVersion(data.project.version);
      toast('Changes saved');
      onChanged(data.project);
    } catch (err) {
      if (err.code === 'version_conflict') setConflict(err);
      else form.fail(err);
    }
  };
  const [submit, busy] = useSubmit(async () => {
    setSavedVersion(null);
    if (!form.validate()) return;
    await save(base.version);
  });

  const reload = async () => {
    const data = await queryClient.fetchQuery({ queryKey: ['project', project.id], queryFn: () => projects.get(project.id), staleTime: 0 });
    setBase(data.project);
    setValues(editable(data.project));
    setConflict(null);
  };
  const overwrite = async () => {
    const data = await projects.get(project.id);
    await save(data.project.version);
  };

  const isPrimary = user.primary_project_id === project.id;
  const togglePrimary = async () => {
    try {
      const data = await accounts.updateMe({ primary_project_id: isPrimary ? null : project.id });
      setUser(data.user);
      toast(isPrimary ? 'No longer your primary project' : 'Marked as your primary project');
    } catch (err) {
      toast(humanError(err), { tone: 'error' });
    }
  };

  const remove = async () => {
    const yes = await confirm({
      title: 'Delete this project?',
      body: `“${project.name}” and its chat will be gone for good. This cannot be undone.`,
      confirmLabel: 'Delete project',
      cancelLabel: 'Keep it',
      danger: true,
    });
    if (!yes) return;
    try {
      await projects.remove(project.id, base.version);
      queryClient.removeQueries({ queryKey: ['project', project.id] });
      queryClient.setQueryData(['projects', 'mine'], (d) => d && { ...d, items: d.items.filter((p) => p.id !== project.id) });
      queryClient.invalidateQueries({ queryKey: ['projects'] });
      toast('Project deleted', { description: `“${project.name}” is gone.` });
      navigate('/projects', { replace: true });
    } catch (err) {
      toast(err.code === 'version_conflict' ? 'Someone changed this project meanwhile: look again before deleting it.' : humanError(err), {
        tone: 'error',
      });
      if (err.code === 'version_conflict') reload();
    }
  };

  const showSaved = savedVersion === base.version && !dirty && !form.formError && !conflict;
  return (
    <div className="project-details">
      {conflict && (
        <Notice
          tone="warn"
          role="alert"
          actions={
            <>
              <LoaderButton className="btn-small" onClick={reload}>
                Reload project
              </LoaderButton>
              <LoaderButton className="btn-small btn-ghost" onClick={overwrite}>
                Overwrite with my changes
              </LoaderButton>
            </>
          }
        >
          <strong>Someone else changed this project</strong> while you were editing. Reload it to see their version (your
          edits here are dropped), or overwrite it with yours.
        </Notice>
      )}
      <form className="card form" onSubmit={submit} noValidate>
        <ProjectFields form={form} />
        <div className="form-actions">
          <LoaderButton type="submit" className="btn-primary" loading={busy} disabled={!dirty}>
            Save changes
          </LoaderButton>
          {dirty && (
            <button type="button" className="btn btn-ghost" onClick={() => setValues(editable(base))}>
              Discard
            </button>
          )}
          {showSaved && (
            <span className="saved" role="status">
              Saved
            </span>
          )}
          {dirty && <span className="muted small">Unsaved changes</span>}
        </div>
      </form>
      <div className="card side-actions">
        <LoaderButton className={isPrimary ? '' : 'btn-ghost'} onClick={togglePrimary}>
          <Star aria-hidden="true" size={16} />
          {isPrimary ? 'Unmark as primary' : 'Mark as primary'}
        </LoaderButton>
        <button type="button" className="btn btn-danger-ghost" onClick={remove}>
          <Trash2 aria-hidden="true" size={16} />
          Delete project
        </button>
        <p className="muted small">
          Created {ago(project.created_at)} · updated {ago(project.updated_at)} · version {project.version}
        </p>
      </div>
    </div>
  );
}

export default function ProjectPage() {
  const id = Number(useParams().id);
  const { user } = useSession();
  // chosen once per page: a window crossing the breakpoint keeps its tree (and
  // what was typed or is pending in the chat); the columns then stack by CSS
  const [narrow] = useState(() => window.matchMedia(NARROW).matches);
  const [tab, setTab] = useState('details');
  const room = `project-${id}`;
  const unread = useUnread(room);
  const { data, error, isPending } = useQuery({
    queryKey: ['project', id],
    queryFn: () => projects.get(id),
    enabled: Number.isSafeInteger(id) && id > 0,
    retry: (n, err) => (err.status === 0 || err.status >= 502) && n < 6,
  });
  const [live, setLive] = useState(null);
  const project = live && data && live.version > data.project.version ? live : data && data.project;
  useTitle(project ? project.name : 'Project');

  if (!Number.isSafeInteger(id) || id <= 0 || (error && (error.status === 404 || error.status === 400)))
    return (
      <section className="page">
        <EmptyState
          icon={FolderX}
          title="Project not found"
          action={
            <Link to="/projects" className="btn btn-primary">
              Go to your projects
            </Link>
          }
        >
          It may have been deleted, or it belongs to someone else.
        </EmptyState>
      </section>
    );
  if (error) return <Notice tone="error">{humanError(error)}</Notice>;
  if (isPending) return <Loading />;

  const details = <Details project={project} onChanged={setLive} />;
  const chatRoom = <ChatRoom room={room} title="Project chat" className="chat-fill" />;
  return (
    <section className="page page-project">
      <Link to="/projects" className="back-link">
        <ArrowLeft aria-hidden="true" size={16} /> Projects
      </Link>
      <div className="page-head">
        <h1 className="project-title" dir="auto">{project.name}</h1>
        <div className="head-tags">
          <StateBadge state={project.state} />
          {user.primary_project_id === project.id && (
            <span className="badge badge-primary">
              <Star aria-hidden="true" size={12} /> Primary
            </span>
          )}
        </div>
      </div>
      {project.description && <p className="muted project-description" dir="auto">{project.description}</p>}
      {narrow ? (
        <Tabs selectedKey={tab} onSelectionChange={setTab} className="tabs">
          <TabList aria-label="Project" className="tab-list">
            <Tab id="details" className="tab">
              Details
            </Tab>
            <Tab id="chat" className="tab">
              Chat {unread > 0 && <span className="count-badge">{unread}</span>}
            </Tab>
          </TabList>
          <TabPanel id="details" className="tab-panel" shouldForceMount>
            {details}
          </TabPanel>
          <TabPanel id="chat" className="tab-panel tab-panel-chat" shouldForceMount>
            {chatRoom}
          </TabPanel>
        </Tabs>
      ) : (
        <div className="project-grid">
          {details}
          {chatRoom}
        </div>
      )}
    </section>
  );
}
