// Confirm.jsx: useConfirm(), a promise-returning confirmation for destructive
// and admin actions, rendered by ConfirmProvider at the root. The dialog's
// code (React Aria's modal) loads the first time one is asked for, so a
// stranger's first load does not carry it.
import { Suspense, createContext, lazy, useCallback, useContext, useRef, useState } from 'react';

const Dialog = lazy(() => import('./Dialog.jsx'));

const ConfirmContext = createContext(null);

/**
 * confirm({title, body, confirmLabel, cancelLabel, danger}) -> Promise<boolean>.
 * The safe choice (cancel) has the focus first.
 */
export function useConfirm() {
  return useContext(ConfirmContext);
}

export function ConfirmProvider({ children }) {
  const [ask, setAsk] = useState(null);
  const resolver = useRef(null);
  const confirm = useCallback(
    (opts) =>
      new Promise((resolve) => {
        resolver.current = resolve;
        setAsk(opts);
      }),
    [],
  );
  const answer = (yes) => {
    setAsk(null);
    if (resolver.current) resolver.current(yes);
    resolver.current = null;
  };
  return (
    <ConfirmContext.Provider value={confirm}>
      {children}
      {ask && (
        <Suspense fallback={null}>
        <Dialog
          title={ask.title}
          alert
          onClose={() => answer(false)}
          footer={
            <>
              <button type="button" className="btn btn-ghost" onClick={() => answer(false)} autoFocus>
                {ask.cancelLabel || 'Cancel'}
              </button>
              <button
                type="button"
                className={`btn ${ask.danger ? 'btn-danger' : 'btn-primary'}`}
                onClick={() => answer(true)}
              >
                {ask.confirmLabel || 'Confirm'}
              </button>
            </>
          }
        >
          {typeof ask.body === 'string' ? <p>{ask.body}</p> : ask.body}
        </Dialog>
        </Suspense>
      )}
    </ConfirmContext.Provider>
  );
}
