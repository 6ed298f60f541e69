// toast.js: toast(title, {tone, description}) from anywhere: the queue the
// toast region (Toasts.jsx, loaded on demand) shows.
import { UNSTABLE_ToastQueue as ToastQueue } from 'react-aria-components';

export const queue = new ToastQueue({ maxVisibleToasts: 4 });

/** tone: 'success' (default), 'error', 'info'. */
export function toast(title, { tone = 'success', description, timeout = 5000 } = {}) {
  return queue.add({ title, tone, description }, { timeout: tone === 'error' ? Math.max(timeout, 8000) : timeout });
}
