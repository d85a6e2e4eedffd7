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
