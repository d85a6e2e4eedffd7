/**
 * Which backups retention keeps and which it deletes: pure, so its boundaries are unit-tested.
 *
 * The policy is the usual grandfather-father-son one: keep the newest complete backup of each of
 * the last `daily` days that have one, of the last `weekly` ISO weeks and of the last `monthly`
 * months (all UTC). The newest complete backup is always kept, whatever the policy says. Partial
 * backups (a component skipped or narrowed) never fill those slots: the newest `partial` of them
 * are kept besides, so a partial backup can never push out the complete one a restore needs. An
 * incomplete backup (no manifest) is never kept for the policy; it is deleted once it is older
 * than the grace period, so a backup still being written is left alone. A backup whose manifest
 * fails its signature check is never counted nor deleted: a person should look at it.
 */

export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  /** How many of the newest partial backups are kept. */
  partial: number;
  /** How long a folder without a manifest may stay: it may be a backup still running. */
  incompleteGraceHours: number;
}

/**
 * complete, partial: its manifest says so (trusted: signed, or unsigned from before signing);
 * incomplete: no manifest; untrusted: its manifest fails its check (problem says why).
 */
export type BackupState = 'complete' | 'partial' | 'incomplete' | 'untrusted';

export interface BackupEntry {
  id: string;
  /** When the backup started (from its id). */
  startedAt: Date;
  state: BackupState;
  /** Why an untrusted backup's manifest fails its check. */
  problem?: string;
  /**
   * The backup applying retention. Ids name the second a backup started, so two backups can
   * tie; the running one is the newer of them.
   */
  current?: boolean;
}

export interface RetentionDecision {
  keep: { id: string; reasons: string[] }[];
  delete: { id: string; reason: string }[];
}

const DAY_MS = 86_400_000;

function dayKey(d: Date): string {
  return d.toISOString().slice(0, 10);
}

function monthKey(d: Date): string {
  return d.toISOString().slice(0, 7);
}

/** ISO-8601 week: weeks start on Monday, week 1 holds the year's first Thursday. */
export function isoWeekKey(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / DAY_MS + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** Newest first; the running backup first among those started in the same second. */
function newestFirst(a: BackupEntry, b: BackupEntry): number {
  return b.startedAt.getTime() - a.startedAt.getTime() || Number(b.current ?? false) - Number(a.current ?? false);
}

export function selectRetention(backups: BackupEntry[], policy: RetentionPolicy, now: Date): RetentionDecision {
  const complete = backups.filter((b) => b.state === 'complete').sort(newestFirst);
  const reasons = new Map<string, string[]>();
  const keepFor = (id: string, reason: string) => reasons.set(id, [...(reasons.get(id) ?? []), reason]);

  const buckets: [string, number, (d: Date) => string][] = [
    ['daily', policy.daily, dayKey],
    ['weekly', policy.weekly, isoWeekKey],
    ['monthly', policy.monthly, monthKey],
  ];
  for (const [name, count, key] of buckets) {
    const seen = new Set<string>();
    for (const backup of complete) {
      const period = key(backup.startedAt);
      if (seen.has(period)) continue;
      if (seen.size >= count) break;
      seen.add(period);
      keepFor(backup.id, `${name} ${period}`);
    }
  }
  const newest = complete[0];
  if (newest) keepFor(newest.id, 'newest complete backup');

  const decision: RetentionDecision = { keep: [], delete: [] };
  for (const backup of complete) {
    const why = reasons.get(backup.id);
    if (why) decision.keep.push({ id: backup.id, reasons: why });
    else decision.delete.push({ id: backup.id, reason: 'complete, outside the retention policy' });
  }
  backups
    .filter((b) => b.state === 'partial')
    .sort(newestFirst)
    .forEach((backup, i) => {
      if (i < policy.partial) decision.keep.push({ id: backup.id, reasons: [`partial, one of the ${policy.partial} newest partial backups`] });
      else if (backup.current) decision.keep.push({ id: backup.id, reasons: ['partial, the backup applying retention'] });
      else decision.delete.push({ id: backup.id, reason: `partial, older than the ${policy.partial} newest partial backups` });
    });
  for (const backup of backups.filter((b) => b.state === 'untrusted')) {
    decision.keep.push({ id: backup.id, reasons: [`its manifest fails its check, kept for a person to look at: ${backup.problem ?? 'unknown problem'}`] });
  }
  const graceMs = policy.incompleteGraceHours * 3_600_000;
  for (const backup of backups.filter((b) => b.state === 'incomplete')) {
    const ageMs = now.getTime() - backup.startedAt.getTime();
    if (ageMs > graceMs) {
      decision.delete.push({
        id: backup.id,
        reason: `incomplete (no manifest) and older than the ${policy.incompleteGraceHours} h grace period`,
      });
    } else {
      decision.keep.push({ id: backup.id, reasons: ['incomplete, within the grace period: may still be running'] });
    }
  }
  return decision;
}
