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
