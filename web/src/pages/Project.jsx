// Project.jsx: one project: edit name, description and state (with If-Match:
// a stale edit is refused, and the page offers to reload), mark it as the
// primary project, delete it (confirmed in a Modal), and its chat room.
import { useCallback, useEffect, useState } from 'react';
import { accounts, projects } from '../api.js';
import { FormError, useForm } from '../components/Field.jsx';
import LoaderButton, { useSubmit } from '../components/LoaderButton.jsx';
import Modal from '../components/Modal.jsx';
import ProjectFields from '../components/ProjectForm.jsx';
import ChatRoom from '../chat/ChatRoom.jsx';
import { Link, navigate } from '../router.jsx';
import { useSession } from '../session.jsx';
import { projectRules } from '../validate.js';
import { StateBadge } from './Projects.jsx';

const editable = (p) => ({ name: p.name, description: p.description, state: p.state });

function DeleteModal({ project, onClose }) {
  const [error, setError] = useState(null);
  const remove = async () => {
    try {
      await projects.remove(project.id);
      navigate('/projects', { replace: true });
    } catch (err) {
      setError(err.message);
    }
  };
  return (
    <Modal
      title="Delete this project?"
      onClose={onClose}
      footer={
        <>
          <button type="button" className="btn btn-ghost" onClick={onClose} data-autofocus>
            Keep it
          </button>
          <LoaderButton className="btn-danger" onClick={remove}>
            Delete project
          </LoaderButton>
        </>
      }
    >
      <p>
        “{project.name}” and its settings will be gone for good. Its chat history stays stored but no one can open
        the room any more.
      </p>
      <FormError>{error}</FormError>
    </Modal>
  );
}

export default function ProjectPage({ params }) {
  const id = Number(params.id);
  const { user, setUser } = useSession();
  const [project, setProject] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [conflict, setConflict] = useState(null);
  const [saved, setSaved] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [primaryError, setPrimaryError] = useState(null);
  const form = useForm({ name: '', description: '', state: 'planning' }, projectRules);
  const { setValues } = form;

  const load = useCallback(async () => {
    try {
      const data = await projects.get(id);
      setProject(data.project);
      setValues(editable(data.project));
      setConflict(null);
      setLoadError(null);
    } catch (err) {
      setLoadError(err);
    }
  }, [id, setValues]);

  useEffect(() => {
    if (Number.isSafeInteger(id) && id > 0) load();
    else setLoadError({ status: 404, message: 'No such project.' });
  }, [id, load]);

  const [save, saving] = useSubmit(async () => {
    setSaved(false);
    if (!form.validate()) return;
    const changes = {};
    for (const [k, v] of Object.entries(form.values)) if (v !== project[k]) changes[k] = v;
    if (Object.keys(changes).length === 0) {
      setSaved(true);
      return;
    }
    try {
      const data = await projects.update(id, project.version, changes);
      setProject(data.project);
      setValues(editable(data.project));
      setSaved(true);
    } catch (err) {
      if (err.code === 'version_conflict') setConflict(err.message);
      else form.fail(err);
    }
  });

  const isPrimary = user.primary_project_id === id;
  const togglePrimary = async () => {
    setPrimaryError(null);
    try {
      const data = await accounts.updateMe({ primary_project_id: isPrimary ? null : id });
      setUser(data.user);
    } catch (err) {
      setPrimaryError(err.message);
    }
  };

  if (loadError)
    return (
      <section className="page">
        <h1>{loadError.status === 404 ? 'Project not found' : 'The project could not be loaded'}</h1>
        <p>{loadError.status === 404 ? 'There is no such project, or it is not yours.' : loadError.message}</p>
        <p>
          <Link to="/projects">Back to your projects</Link>
        </p>
      </section>
    );
  if (!project) return <p className="muted loading-line">Loading…</p>;

  return (
    <section className="page">
      <p className="crumbs">
        <Link to="/projects">Projects</Link> / <span>{project.name}</span>
      </p>
      <div className="page-head">
        <h1 className="project-title">{project.name}</h1>
        <div className="head-tags">
          {isPrimary && <span className="badge badge-primary">Primary</span>}
          <StateBadge state={project.state} />
        </div>
      </div>
      <div className="project-layout">
        <div className="stack">
          {conflict && (
            <div className="notice notice-warn" role="alert">
              <p>
                <strong>Someone else changed this project</strong> since you opened it. Reload it to see their
                changes; your edits here will be replaced.
              </p>
              <LoaderButton onClick={load}>Reload project</LoaderButton>
            </div>
          )}
          <form className="card form" onSubmit={save} noValidate aria-label="Edit project">
            <h2>Details</h2>
            <ProjectFields form={form} />
            <div className="form-actions">
              <LoaderButton type="submit" className="btn-primary" loading={saving}>
                Save changes
              </LoaderButton>
              {saved && (
                <span className="saved" role="status">
                  Saved
                </span>
              )}
            </div>
          </form>
          <div className="card actions-card">
            <h2>Actions</h2>
            <FormError>{primaryError}</FormError>
            <div className="form-actions">
              <LoaderButton onClick={togglePrimary}>{isPrimary ? 'Unmark as primary' : 'Mark as primary'}</LoaderButton>
              <button type="button" className="btn btn-danger" onClick={() => setDeleting(true)}>
                Delete project
              </button>
            </div>
          </div>
        </div>
        <ChatRoom room={`project-${id}`} title="Project chat" />
      </div>
      {deleting && <DeleteModal project={project} onClose={() => setDeleting(false)} />}
    </section>
  );
}
