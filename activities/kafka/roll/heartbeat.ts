import { Context } from '@temporalio/activity';
import { heartbeat } from '../../common/heartbeat';

/** How often heartbeats go out while a command runs. */
export const POLL_MS = 1_000;

/** The running activity's context; undefined outside an activity (a script, a test), where nothing heartbeats. */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** A heartbeat with these details when called inside an activity; nothing elsewhere. */
export function heartbeatIfInActivity(details: unknown): void {
  const ctx = activityContext();
  if (ctx) heartbeat(details, ctx);
}
