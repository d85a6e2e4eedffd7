import { Context } from '@temporalio/activity';

/**
 * How often the worker tells Temporal that a running activity is alive. The workflows' heartbeat
 * timeout (workflows/activityOptions.ts) is a few of these: a worker that dies is noticed within
 * that timeout, whatever the activity was doing.
 */
export const LIVENESS_EVERY_MS = 3_000;

// Temporal keeps only the details of the last heartbeat. A liveness beat therefore re-sends the
// activity's own latest details, never nothing: an empty beat would wipe the progress a retried
// attempt resumes from.
const latestDetails = new WeakMap<Context, { details: unknown }>();

/** Sends a heartbeat with these progress details, and keeps them for the liveness beats. */
export function heartbeat(details: unknown, ctx: Context = Context.current()): void {
  latestDetails.set(ctx, { details });
  ctx.heartbeat(details);
}

/**
 * Runs one activity execution while heartbeating every LIVENESS_EVERY_MS (or a third of its
 * heartbeat timeout, when that is shorter), with the details the activity last sent (or, before it
 * has sent any, those its previous attempt left). The worker wraps every activity in this, so no
 * step, however long one call inside it takes, is mistaken for a dead worker, and every step of a
 * dead worker is noticed. Only a step that blocks the event loop for longer than its heartbeat
 * timeout misses a beat: the large-restore test shrinks the timeout to catch exactly that.
 */
export async function whileAlive<T>(ctx: Context, run: () => Promise<T>, everyMs = livenessInterval(ctx)): Promise<T> {
  const timer = setInterval(() => {
    const latest = latestDetails.get(ctx);
    ctx.heartbeat(latest ? latest.details : ctx.info.heartbeatDetails);
  }, everyMs);
  try {
    return await run();
  } finally {
    clearInterval(timer);
  }
}

function livenessInterval(ctx: Context): number {
  const timeout = ctx.info.heartbeatTimeoutMs;
  return timeout ? Math.min(LIVENESS_EVERY_MS, Math.max(100, Math.floor(timeout / 3))) : LIVENESS_EVERY_MS;
}

/**
 * Heartbeats every `everyMs` with the latest progress, so the details a person sees (and a retry
 * resumes from) stay current while a long step produces no events of its own. Returns a function
 * that stops it.
 */
export function keepHeartbeating(progress: () => unknown, everyMs = 5_000): () => void {
  const ctx = Context.current();
  const timer = setInterval(() => heartbeat(progress(), ctx), everyMs);
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
    heartbeat(progress(), ctx);
  };
  const beat = () => {
    if (Date.now() - last >= everyMs) now();
  };
  return Object.assign(beat, { now });
}
