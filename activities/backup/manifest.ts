import { ApplicationFailure } from '@temporalio/activity';
import type { BackupManifest, Component, ComponentSummary, ManifestRequest } from '../../contracts/backupTypes';
import { backupKey, getJson, headObject, putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { Failure } from '../../contracts/failures';
import { configuredComponents, lacksOf } from './completeness';
import { signManifest } from './manifestSignature';

export function manifestKey(backupId: string): string {
  return backupKey(backupId, 'manifest.json');
}

export function summarizeComponents(pieces: ManifestRequest['pieces']): ComponentSummary[] {
  const byComponent = new Map<Component, ComponentSummary>();
  for (const p of pieces) {
    const s = byComponent.get(p.component) ?? {
      component: p.component,
      pieces: 0,
      bytes: 0,
      rows: 0,
      messages: 0,
      durationMs: 0,
      startedAt: p.startedAt,
      finishedAt: p.finishedAt,
    };
    s.pieces++;
    s.bytes += p.size;
    s.rows += p.rows ?? 0;
    s.messages += p.messages ?? 0;
    s.durationMs += p.durationMs;
    if (p.startedAt < s.startedAt) s.startedAt = p.startedAt;
    if (p.finishedAt > s.finishedAt) s.finishedAt = p.finishedAt;
    byComponent.set(p.component, s);
  }
  return [...byComponent.values()];
}

export function createBackupManifestActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Checks that every piece's object is there with its recorded size, then writes manifest.json:
     * the mark of a finished backup, so it is written last and only when everything is in place.
     * It records whether the backup is complete or partial, and is signed with backup.manifestKey
     * (unsigned without one).
     */
    async writeManifest(request: ManifestRequest): Promise<BackupManifest> {
      const s3 = connections.s3(60_000);
      const key = manifestKey(request.backupId);
      try {
        const existing = await getJson<BackupManifest>(s3, bucket, key);
        if (existing) return existing;

        const problems: string[] = [];
        for (const piece of request.pieces) {
          // Referenced objects live in an earlier backup; their listing piece is what this one holds.
          const head = await headObject(s3, bucket, piece.key);
          if (!head) problems.push(`${piece.key} is missing`);
          else if (head.size !== piece.size) problems.push(`${piece.key} is ${head.size} bytes, recorded ${piece.size}`);
        }
        if (problems.length) {
          throw ApplicationFailure.nonRetryable(
            `backup ${request.backupId} is not complete, no manifest written: ${problems.join('; ')}`,
            Failure.BackupIncomplete,
          );
        }

        const configured = configuredComponents(config);
        const lacks = lacksOf(request.skipped, request.narrowed).filter((l) => configured.includes(l.component));
        const snapshots = request.pieces.map((p) => p.snapshotAt).sort();
        const manifest: BackupManifest = {
          formatVersion: 1,
          backupId: request.backupId,
          environment: request.environment,
          workflowId: request.workflowId,
          runId: request.runId,
          startedAt: request.startedAt,
          finishedAt: new Date().toISOString(),
          consistencyPoint: snapshots[0] ?? request.startedAt,
          serverVersions: request.serverVersions,
          components: summarizeComponents(request.pieces),
          skipped: request.skipped,
          ...(request.previousBackupId ? { previousBackupId: request.previousBackupId } : {}),
          totals: {
            pieces: request.pieces.length,
            bytes: request.pieces.reduce((s, p) => s + p.size, 0),
            rows: request.pieces.reduce((s, p) => s + (p.rows ?? 0), 0),
            messages: request.pieces.reduce((s, p) => s + (p.messages ?? 0), 0),
          },
          pieces: request.pieces,
          complete: lacks.length === 0,
          lacks,
        };
        const signingKey = connections.manifestSigningKey;
        const written = signingKey ? signManifest(manifest, signingKey) : manifest;
        await putJson(s3, bucket, key, written);
        return written;
      } finally {
        s3.destroy();
      }
    },
  };
}
