// main.jsx: the web client's entry point: the server-state cache (TanStack
// Query), the connection watch, the router.
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { RouterProvider } from 'react-router';
import { startConnectionWatch } from './lib/connection.js';
import { isTransient } from './lib/errors.js';
import { router } from './routes.jsx';
import './styles.css';

// React Aria injects one <style> for touch-action on pressable elements;
// the CSP refuses inline styles, so the rule is in styles.css and this
// placeholder tells React Aria it is there already.
const placeholder = document.createElement('meta');
placeholder.id = 'react-aria-pressable-style';
document.head.append(placeholder);

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // reads are retried while the network or a service is away, never on a refusal
      retry: (count, err) => isTransient(err) && count < 6,
      retryDelay: (count, err) => (err && err.retryAfter ? err.retryAfter * 1000 : Math.min(1000 * 2 ** count, 15000)),
      staleTime: 10000,
      refetchOnWindowFocus: true,
      networkMode: 'always',
    },
    mutations: { networkMode: 'always' },
  },
});

startConnectionWatch();

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
