/**
 * Runs `fn` over `items`, at most `limit` at once, results in input order. After the first
 * failure it starts nothing more, waits for the running ones, and throws that failure: no new
 * step (a destructive one, say) begins once another has failed.
 *
 * The one bounded-concurrency helper for workflows and activities alike. It is deterministic:
 * which item starts next depends only on completion order, which workflow history records.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const lane = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  if (failed) throw firstError;
  return results;
}
