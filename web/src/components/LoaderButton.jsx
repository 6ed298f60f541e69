// LoaderButton: a button that runs an async action, and while it runs is
// disabled and shows a spinner, so an action is never sent twice. Either it
// runs its own onClick (a promise), or a form drives it with `loading`.
import { useRef, useState } from 'react';

export default function LoaderButton({ loading = false, onClick, disabled, children, className = '', type = 'button', ...rest }) {
  const [running, setRunning] = useState(false);
  const guard = useRef(false);
  const busy = loading || running;

  const handleClick = async (e) => {
    if (!onClick) return;
    if (guard.current) {
      e.preventDefault();
      return;
    }
    guard.current = true;
    setRunning(true);
    try {
      await onClick(e);
    } finally {
      guard.current = false;
      setRunning(false);
    }
  };

  return (
    <button
      type={type}
      className={`btn ${className}${busy ? ' is-busy' : ''}`}
      disabled={disabled || busy}
      aria-busy={busy}
      onClick={onClick ? handleClick : undefined}
      {...rest}
    >
      {busy && <span className="spinner" aria-hidden="true" />}
      <span className="btn-label">{children}</span>
    </button>
  );
}

/**
 * useSubmit(action): [run, busy] for a form: run(event) prevents the default
 * submit, and runs action once at a time (Enter pressed twice sends once).
 */
export function useSubmit(action) {
  const [busy, setBusy] = useState(false);
  const guard = useRef(false);
  const run = async (e) => {
    if (e) e.preventDefault();
    if (guard.current) return;
    guard.current = true;
    setBusy(true);
    try {
      await action();
    } finally {
      guard.current = false;
      setBusy(false);
    }
  };
  return [run, busy];
}
