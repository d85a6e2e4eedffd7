import { Context } from '@temporalio/activity';

/**
 * Heartbeats every `everyMs` with the latest progress, so a long step that produces no progress
 * for a while (a big table's count, a slow server) is not mistaken for a dead worker. Returns a
 * function that stops it.
 */
export function keepHeartbeating(progress: () => unknown, everyMs = 5_000): () => void {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(progress()), everyMs);
  return () => clearInterval(timer);
}

/**
 * A heartbeat for progress that changes on every chunk of a stream: `beat()` sends at most once per
 * `everyMs`, `beat.now()` sends at once (a finished step). Each heartbeat is serialized and crosses
 * into the SDK's native core, too costly to pay for every chunk.
 */
export function throttledHeartbeat(progress: () => unknown, everyMs = 1_000): { (): void; now(): void } {
  const ctx = Context.current();
  let last = 0;
  const now = () => {
    last = Date.now();
    ctx.heartbeat(progress());
  };
  const beat = () => {
    if (Date.now() - last >= everyMs) now();
  };
  return Object.assign(beat, { now });
}
