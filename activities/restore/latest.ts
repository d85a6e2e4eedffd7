/**
 * Which backup "latest" means: the newest complete one. Pure given how to inspect one backup, so
 * it is unit-tested with fakes.
 */
import type { SkippedComponent } from '../../contracts/backupTypes';

/** One backup folder, as its manifest (if any) shows it once checked. */
export type Inspected<T> =
  | { kind: 'no manifest' }
  | { kind: 'refused'; problem: string }
  | { kind: 'usable'; complete: boolean; lacks: SkippedComponent[]; value: T };

export interface PassedOver {
  backupId: string;
  reason: string;
}

export type LatestResult<T> =
  | { kind: 'found'; backupId: string; value: T; passedOver: PassedOver[] }
  | { kind: 'none'; passedOver: PassedOver[] }
  | { kind: 'refused'; backupId: string; problem: string; passedOver: PassedOver[] };

/**
 * Walks the backups newest first: folders without a manifest (running or failed backups) and
 * partial backups are passed over; the first complete one is "latest". A manifest that fails its
 * check stops the walk instead of being passed over: were it skipped, whoever can write to the
 * bucket could steer "latest" to an older backup by spoiling the newer ones' manifests.
 */
export async function resolveLatest<T>(idsOldestFirst: readonly string[], inspect: (id: string) => Promise<Inspected<T>>): Promise<LatestResult<T>> {
  const passedOver: PassedOver[] = [];
  for (const backupId of [...idsOldestFirst].reverse()) {
    const found = await inspect(backupId);
    if (found.kind === 'no manifest') continue;
    if (found.kind === 'refused') return { kind: 'refused', backupId, problem: found.problem, passedOver };
    if (found.complete) return { kind: 'found', backupId, value: found.value, passedOver };
    passedOver.push({ backupId, reason: `partial: it lacks ${found.lacks.map((l) => `${l.component} (${l.reason})`).join(', ') || 'components it does not name'}` });
  }
  return { kind: 'none', passedOver };
}
