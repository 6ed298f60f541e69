// UI.jsx: the small shared pieces: a page header, an empty state that offers
// the next action, a notice, a badge for a project's state, a spinner line,
// and the unsaved-changes guard.
import { useEffect } from 'react';
import { useBlocker } from 'react-router';
import { CircleAlert, CircleCheck, Info, TriangleAlert } from 'lucide-react';
import { stateLabel } from '../validate.js';
import { SORTS } from '../lib/lists.js';
import { useConfirm } from './Confirm.jsx';

export function PageHeader({ title, subtitle, actions, children }) {
  return (
    <div className="page-head">
      <div className="page-head-text">
        <h1>{title}</h1>
        {subtitle && <p className="muted">{subtitle}</p>}
        {children}
      </div>
      {actions && <div className="page-head-actions">{actions}</div>}
    </div>
  );
}

export function EmptyState({ icon: Icon, title, children, action }) {
  return (
    <div className="card empty">
      {Icon && <Icon aria-hidden="true" size={32} className="empty-icon" />}
      <p className="empty-title">{title}</p>
      {children && <p className="muted">{children}</p>}
      {action}
    </div>
  );
}

const NOTICE_ICON = { error: CircleAlert, warn: TriangleAlert, ok: CircleCheck, info: Info };

export function Notice({ tone = 'info', children, role, actions }) {
  const Icon = NOTICE_ICON[tone];
  return (
    <div className={`notice notice-${tone}`} role={role || (tone === 'error' ? 'alert' : undefined)}>
      <Icon aria-hidden="true" size={18} />
      <div className="notice-body">{children}</div>
      {actions && <div className="notice-actions">{actions}</div>}
    </div>
  );
}

export function StateBadge({ state }) {
  return <span className={`badge badge-${state}`}>{stateLabel(state)}</span>;
}

/** The sort orders of a list (lib/lists.js's SORTS) as a select. */
export function SortSelect({ value, onChange, label }) {
  return (
    <select value={value} onChange={(e) => onChange(e.target.value)} aria-label={label}>
      {Object.entries(SORTS).map(([k, v]) => (
        <option key={k} value={k}>
          {v.label}
        </option>
      ))}
    </select>
  );
}

/** "Show more (N left)" under a list shown a page at a time: nothing when all is shown. */
export function ShowMore({ total, shown, onMore }) {
  if (total <= shown) return null;
  return (
    <div className="more">
      <button type="button" className="btn" onClick={onMore}>
        Show more ({total - shown} left)
      </button>
    </div>
  );
}

export function Loading({ children = 'Loading…' }) {
  return (
    <p className="muted loading-line" role="status">
      <span className="spinner" aria-hidden="true" /> {children}
    </p>
  );
}

/**
 * Asks before leaving a page with unsaved edits: a link in the app (React
 * Router's blocker, answered in a confirmation dialog) or closing the tab
 * (the browser's own beforeunload prompt).
 */
export function useUnsavedGuard(dirty) {
  const confirm = useConfirm();
  const blocker = useBlocker(({ currentLocation, nextLocation }) => dirty && currentLocation.pathname !== nextLocation.pathname);
  useEffect(() => {
    if (blocker.state !== 'blocked') return;
    confirm({
      title: 'Leave without saving?',
      body: 'Your changes on this page have not been saved. If you leave now they are lost.',
      confirmLabel: 'Leave and discard',
      cancelLabel: 'Stay on this page',
      danger: true,
    }).then((leave) => (leave ? blocker.proceed() : blocker.reset()));
  }, [blocker.state]); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    if (!dirty) return undefined;
    const onBeforeUnload = (e) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [dirty]);
}
