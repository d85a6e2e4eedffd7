/**
 * Whether a backup is complete (every configured component, in full, nothing skipped) or partial,
 * and what it lacks. Pure: unit-tested.
 */
import { COMPONENTS, type BackupManifest, type Component, type SkippedComponent } from '../../contracts/backupTypes';
import type { Config } from '../../contracts/config';

/**
 * The components a complete backup holds under `config`. The object store counts only when it
 * lists data buckets: without any, a full backup has no piece of it.
 */
export function configuredComponents(config: Pick<Config, 'objectStore'>): Component[] {
  return COMPONENTS.filter((c) => c !== 'objectStore' || config.objectStore.buckets.length > 0);
}

/** What a backup being written lacks: what it skipped, then what the input narrowed. */
export function lacksOf(skipped: SkippedComponent[], narrowed: SkippedComponent[] = []): SkippedComponent[] {
  return [...skipped, ...narrowed.filter((n) => !skipped.some((s) => s.component === n.component))];
}

export interface Completeness {
  complete: boolean;
  lacks: SkippedComponent[];
  /** False for a manifest written before completeness was recorded: inferred from what it holds. */
  recorded: boolean;
}

/**
 * The manifest's own word when it has one. An older manifest counts as complete only when it
 * skipped nothing and holds a piece of every configured component; it cannot tell whether its
 * input narrowed a component to some databases, tables, topics or buckets, so such a backup
 * counts as complete.
 */
export function manifestCompleteness(
  manifest: Pick<BackupManifest, 'complete' | 'lacks' | 'skipped' | 'pieces'>,
  configured: readonly Component[],
): Completeness {
  if (typeof manifest.complete === 'boolean') {
    return { complete: manifest.complete, lacks: manifest.lacks ?? [], recorded: true };
  }
  const held = new Set(manifest.pieces.map((p) => p.component));
  const missing = configured
    .filter((c) => !held.has(c) && !manifest.skipped.some((s) => s.component === c))
    .map((component) => ({ component, reason: 'the backup holds no piece of it' }));
  const lacks = [...manifest.skipped, ...missing];
  return { complete: lacks.length === 0, lacks, recorded: false };
}
