// Dialog: a modal dialog from React Aria (focus moved in and contained,
// Escape and the close button close it, focus goes back to what opened it,
// the page behind is inert and does not scroll). Labelled by its title.
// useConfirm(): a promise-returning confirmation for destructive and admin
// actions, rendered by ConfirmProvider at the root.
import { createContext, useCallback, useContext, useRef, useState } from 'react';
import { Dialog as AriaDialog, Heading, Modal, ModalOverlay } from 'react-aria-components';
import { X } from 'lucide-react';

export default function Dialog({ title, onClose, children, footer, alert = false, isOpen = true }) {
  return (
    <ModalOverlay
      isOpen={isOpen}
      onOpenChange={(open) => !open && onClose()}
      isDismissable={!alert}
      className="modal-backdrop"
    >
      <Modal className="modal">
        <AriaDialog className="modal-dialog" role={alert ? 'alertdialog' : 'dialog'}>
          <div className="modal-head">
            <Heading slot="title" className="modal-title">
              {title}
            </Heading>
            <button type="button" className="btn btn-icon btn-ghost" aria-label="Close" onClick={onClose}>
              <X aria-hidden="true" size={18} />
            </button>
          </div>
          <div className="modal-body">{children}</div>
          {footer && <div className="modal-foot">{footer}</div>}
        </AriaDialog>
      </Modal>
    </ModalOverlay>
  );
}

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
      )}
    </ConfirmContext.Provider>
  );
}
