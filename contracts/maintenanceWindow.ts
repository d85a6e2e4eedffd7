/**
 * The maintenance window: when compaction may start a step. Pure and deterministic, so workflow
 * code asks it with the workflow's own clock (and tests with TestWorkflowEnvironment's).
 */

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** "HH:MM", UTC. */
  start: string;
  durationMinutes: number;
  /** Days the window opens on (UTC); a window may run past midnight into the next day. */
  days: Weekday[];
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Minutes after midnight of "HH:MM", or undefined when it is not a time of day. */
export function minutesOfDay(text: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

/** The window that contains `now`: when it opened and closes; undefined when `now` is outside every window. */
export function openWindow(window: MaintenanceWindow, now: Date): { opened: Date; closes: Date } | undefined {
  const start = minutesOfDay(window.start);
  if (start === undefined) throw new Error(`maintenance.window.start: "${window.start}" is not HH:MM`);
  const midnight = Math.floor(now.getTime() / DAY) * DAY;
  // A window that opened yesterday may still be open (it runs past midnight).
  for (const dayStart of [midnight, midnight - DAY]) {
    const opened = dayStart + start * MINUTE;
    const closes = opened + window.durationMinutes * MINUTE;
    const weekday = WEEKDAYS[new Date(dayStart).getUTCDay()]!;
    if (window.days.includes(weekday) && now.getTime() >= opened && now.getTime() < closes) return { opened: new Date(opened), closes: new Date(closes) };
  }
  return undefined;
}

/** The next time the window opens, strictly after `now` (at most a week ahead). */
export function nextOpening(window: MaintenanceWindow, now: Date): Date {
  const start = minutesOfDay(window.start)!;
  const midnight = Math.floor(now.getTime() / DAY) * DAY;
  for (let d = 0; d <= 7; d++) {
    const opened = midnight + d * DAY + start * MINUTE;
    if (opened > now.getTime() && window.days.includes(WEEKDAYS[new Date(midnight + d * DAY).getUTCDay()]!)) return new Date(opened);
  }
  throw new Error('maintenance.window.days is empty');
}

/** The cron text (UTC) of a schedule that starts compaction as the window opens. */
export function windowCron(window: MaintenanceWindow): string {
  const start = minutesOfDay(window.start)!;
  const days = window.days.length === WEEKDAYS.length ? '*' : window.days.map((d) => WEEKDAYS.indexOf(d)).sort().join(',');
  return `${start % 60} ${Math.floor(start / 60)} * * ${days}`;
}
