// Toasts: short results of an action ("Project deleted", "Saved"), from React
// Aria's toast region (a landmark, F6 reaches it, each toast announced).
// toast(title, {tone, description}) from anywhere (toast.js).
// toast() itself is in toast.js (the queue); this region loads on demand.
import {
  Text,
  UNSTABLE_Toast as Toast,
  UNSTABLE_ToastContent as ToastContent,
  UNSTABLE_ToastRegion as ToastRegion,
} from 'react-aria-components';
import { CircleAlert, CircleCheck, Info, X } from 'lucide-react';
import { queue } from './toast.js';

const ICON = { success: CircleCheck, error: CircleAlert, info: Info };

export default function ToastArea() {
  return (
    <ToastRegion queue={queue} className="toasts" aria-label="Notifications">
      {({ toast: t }) => {
        const Icon = ICON[t.content.tone] || Info;
        return (
          <Toast toast={t} className={`toast toast-${t.content.tone}`}>
            <Icon aria-hidden="true" size={18} className="toast-icon" />
            <ToastContent className="toast-content">
              <Text slot="title" className="toast-title">
                {t.content.title}
              </Text>
              {t.content.description && (
                <Text slot="description" className="toast-description">
                  {t.content.description}
                </Text>
              )}
            </ToastContent>
            <button type="button" className="btn btn-icon btn-ghost btn-small" aria-label="Dismiss" onClick={() => queue.close(t.key)}>
              <X aria-hidden="true" size={16} />
            </button>
          </Toast>
        );
      }}
    </ToastRegion>
  );
}
