// usePaged.js: a cursor-paged list from the API (`limit` + opaque `cursor`,
// answered with `{<key>: [...], next_cursor}`), loaded a page at a time.
import { useCallback, useEffect, useState } from 'react';

/** items, cursor (null on the last page), error, loaded, loadMore(), replace(item).
 *  fetchPage must be stable (defined outside the component or memoised). */
export default function usePaged(fetchPage, key, pageSize) {
  const [items, setItems] = useState([]);
  const [cursor, setCursor] = useState(null);
  const [error, setError] = useState(null);
  const [loaded, setLoaded] = useState(false);
  const load = useCallback(
    async (after) => {
      try {
        const data = await fetchPage({ limit: pageSize, cursor: after });
        setItems((old) => (after ? [...old, ...data[key]] : data[key]));
        setCursor(data.next_cursor);
        setError(null);
      } catch (err) {
        setError(err.message);
      } finally {
        setLoaded(true);
      }
    },
    [fetchPage, key, pageSize],
  );
  useEffect(() => {
    load(null);
  }, [load]);
  const replace = (item) => setItems((old) => old.map((x) => (x.id === item.id ? item : x)));
  return { items, cursor, error, loaded, loadMore: () => load(cursor), replace };
}
