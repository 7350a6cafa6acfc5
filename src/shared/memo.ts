/**
 * `parse` with its results kept per input string, for inputs that repeat on
 * every call (a peer's address): bounded by `limit` entries, emptied when
 * full rather than kept LRU. Results are shared between callers: read only.
 */
export function memoizeParse<T>(parse: (text: string) => T, limit = 4096): (text: string) => T {
  const results = new Map<string, T>();
  return (text) => {
    if (results.has(text)) return results.get(text) as T;
    const result = parse(text);
    if (results.size >= limit) results.clear();
    results.set(text, result);
    return result;
  };
}
