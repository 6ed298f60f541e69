// Dialog: a modal dialog from React Aria (focus moved in and contained,
// Escape and the close button close it, focus goes back to what opened it,
// the page behind is inert and does not scroll). Labelled by its title.
// Confirmations use it through components/Confirm.jsx.
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

