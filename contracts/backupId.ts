/**
 * Backup ids sort by time as plain strings: `2026-11-22T02-00-00Z-1a2b3c`. Pure, so the workflow
 * builds the id deterministically and activities parse it back.
 */
const PATTERN = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})Z-([0-9a-f]{6})$/;

export function makeBackupId(startedAt: Date, uniqueHex: string): string {
  const stamp = startedAt.toISOString().slice(0, 19).replace(/:/g, '-');
  return `${stamp}Z-${uniqueHex.replace(/[^0-9a-f]/g, '').slice(0, 6).padEnd(6, '0')}`;
}

/** The time a backup id names, or undefined for a folder that is not a ballast backup. */
export function backupIdTime(id: string): Date | undefined {
  const match = PATTERN.exec(id);
  if (!match) return undefined;
  const [, day, hh, mm, ss] = match;
  return new Date(`${day}T${hh}:${mm}:${ss}Z`);
}

export function isBackupId(id: string): boolean {
  return backupIdTime(id) !== undefined;
}

/**
 * The one rule every backup id passes, wherever it comes from (input, a workflow, a bucket
 * listing): one plain key segment, so no id can name a folder outside `backups/`. Ids ballast
 * makes (makeBackupId) pass it; so do the ids tests and operators choose.
 */
const VALID_ID = /^[A-Za-z0-9][A-Za-z0-9._=-]{0,199}$/;

/** Why `id` is not a usable backup id, or undefined when it is. */
export function backupIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return `backupId must be a string, got ${typeof id}`;
  if (!VALID_ID.test(id)) return `backupId ${JSON.stringify(id)} must be 1 to 200 letters, digits, '.', '_', '=' or '-', starting with a letter or digit`;
  return undefined;
}
