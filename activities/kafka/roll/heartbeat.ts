import { Context } from '@temporalio/activity';

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
