/**
 * A strict check of the cron text given to Temporal schedules (backup.schedule.cron,
 * drill.schedule.cron). Accepted: five fields, minute hour day-of-month month day-of-week, each
 * a list of `*`, a number or a range, any of them with a step after `*` or a range; three-letter
 * month and day names (JAN, MON) in their fields; or one of the shortcuts Temporal's server
 * expands (service/worker/scheduler/calendar.go, handlePredefinedCronStrings).
 *
 * Stricter than Temporal, which also takes seconds and year fields, `@every`, a `TZ=` prefix, a
 * `#` comment and `5/15` (5 to the end, every 15): the config says UTC, and a schedule should
 * mean the same to anyone who reads it as a crontab line. Pure, for the config schema.
 */

export const CRON_SHORTCUTS = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'] as const;

interface Field {
  name: string;
  min: number;
  max: number;
  /** Names for the values from `min` on, matched case-insensitively. */
  names?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  // 7 is Sunday too, in crontab and in Temporal.
  { name: 'day-of-week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

const FORMAT = `5 fields (minute hour day-of-month month day-of-week) or one of ${CRON_SHORTCUTS.join(', ')}`;

/** Why `text` is not a cron expression ballast accepts, or undefined. */
export function cronProblem(text: string): string | undefined {
  const problem = fieldsProblem(text);
  return problem && `${JSON.stringify(text)} is not a cron expression: ${problem}`;
}

function fieldsProblem(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('@')) {
    if (!(CRON_SHORTCUTS as readonly string[]).includes(trimmed)) return `unknown shortcut; expected ${FORMAT}`;
    // Temporal matches a shortcut only as the whole text.
    return trimmed === text ? undefined : `${trimmed} must stand alone, without spaces around it`;
  }
  const parts = trimmed === '' ? [] : trimmed.split(/\s+/);
  if (parts.length !== FIELDS.length) return `${parts.length} field${parts.length === 1 ? '' : 's'}; expected ${FORMAT}`;
  for (const [i, field] of FIELDS.entries()) {
    for (const item of parts[i]!.split(',')) {
      const problem = itemProblem(item, field);
      if (problem) return problem;
    }
  }
  const [, , dayOfMonth, , dayOfWeek] = parts as [string, string, string, string, string];
  if (dayOfMonth !== '*' && dayOfWeek !== '*') {
    return `day-of-month "${dayOfMonth}" and day-of-week "${dayOfWeek}" are both set: Temporal runs only on days matching both, where crontab runs on days matching either; set one of them and leave the other *`;
  }
  return undefined;
}

/** One comma-separated item: `*`, a value or a range, with an optional step after `*` or a range. */
function itemProblem(item: string, field: Field): string | undefined {
  const [base = '', step, extra] = item.split('/');
  if (extra !== undefined) return `${field.name} "${item}" has more than one step`;
  if (step !== undefined) {
    const span = field.max - field.min + 1;
    if (!/^\d+$/.test(step) || Number(step) < 1 || Number(step) > span) return `${field.name} step "${step}" in "${item}" must be a whole number from 1 to ${span}`;
  }
  if (base === '*') return undefined;
  const [from = '', to, more] = base.split('-');
  if (more !== undefined) return `${field.name} "${item}" is not a value or a range`;
  const start = valueOf(from, field);
  if (typeof start === 'string') return start;
  if (to === undefined) {
    return step === undefined ? undefined : `${field.name} "${item}": a step needs * or a range before it (write ${from}-${field.max}/${step})`;
  }
  const end = valueOf(to, field);
  if (typeof end === 'string') return end;
  return end < start ? `${field.name} range "${base}" runs backwards` : undefined;
}

/** The value a number or name stands for, or why it stands for none. */
function valueOf(token: string, field: Field): number | string {
  let value: number | undefined;
  if (/^\d+$/.test(token)) value = Number(token);
  else if (field.names && /^[A-Za-z]{3}$/.test(token)) {
    const index = field.names.indexOf(token.toUpperCase());
    if (index >= 0) value = field.min + index;
  }
  if (value === undefined) {
    const names = field.names ? ` or a name ${field.names[0]}-${field.names[field.names.length - 1]}` : '';
    return `${field.name} "${token}" is not a number${names}`;
  }
  if (value < field.min || value > field.max) return `${field.name} ${token} is out of range ${field.min}-${field.max}`;
  return value;
}
