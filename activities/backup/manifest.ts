import { ApplicationFailure } from '@temporalio/activity';
import type { BackupManifest, BackupPiece, Component, ComponentSummary, ManifestRequest, ManifestSummary } from '../../contracts/backupTypes';
import { mapLimit } from '../../contracts/concurrency';
import { backupKey, backupPrefix, getJson, headObject, listSizes, putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';
import { Failure } from '../../contracts/failures';
import { throttledHeartbeat } from '../common/heartbeat';
import { readPieceLists } from './pieceLists';
import { configuredComponents, lacksOf } from './completeness';
import { signManifest } from './manifestSignature';

export function manifestKey(backupId: string): string {
  return backupKey(backupId, 'manifest.json');
}

// Look-ups at once of pieces the folder's listing does not show.
const HEAD_CONCURRENCY = 8;

export function summarizeComponents(pieces: BackupPiece[]): ComponentSummary[] {
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

function withoutPieces({ pieces: _pieces, ...summary }: BackupManifest): ManifestSummary {
  return summary;
}

export function createBackupManifestActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    /**
     * Reads every step's piece list (refusing one changed since its step wrote it), checks that
     * every piece's object is there with its recorded size, then writes manifest.json:
     * the mark of a finished backup, so it is written last and only when everything is in place.
     * It records whether the backup is complete or partial, and is signed with backup.manifestKey
     * (unsigned without one).
     */
    async writeManifest(request: ManifestRequest): Promise<ManifestSummary> {
      const s3 = connections.s3(60_000);
      const key = manifestKey(request.backupId);
      try {
        const existing = await getJson<BackupManifest>(s3, bucket, key);
        if (existing) return withoutPieces(existing);

        const progress = { listsRead: 0, lists: request.pieceLists.length, piecesChecked: 0 };
        const beat = throttledHeartbeat(() => progress);
        const pieces = await readPieceLists(s3, bucket, request.backupId, request.pieceLists, () => {
          progress.listsRead++;
          beat();
        });
        // The folder's listing gives every size in one request per 1,000 objects; a piece it
        // lacks (written since the listing began, say) is looked up on its own.
        const listed = await listSizes(s3, bucket, backupPrefix(request.backupId), beat);
        const problems: string[] = [];
        await mapLimit(pieces, HEAD_CONCURRENCY, async (piece) => {
          // Referenced objects live in an earlier backup; their listing piece is what this one holds.
          const size = listed.get(piece.key) ?? (await headObject(s3, bucket, piece.key))?.size;
          if (size === undefined) problems.push(`${piece.key} is missing`);
          else if (size !== piece.size) problems.push(`${piece.key} is ${size} bytes, recorded ${piece.size}`);
          progress.piecesChecked++;
          beat();
        });
        if (problems.length) {
          problems.sort();
          throw ApplicationFailure.nonRetryable(
            `backup ${request.backupId} is not complete, no manifest written: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
            Failure.BackupIncomplete,
          );
        }

        const configured = configuredComponents(config);
        const lacks = lacksOf(request.skipped, request.narrowed).filter((l) => configured.includes(l.component));
        const snapshots = pieces.map((p) => p.snapshotAt).sort();
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
          components: summarizeComponents(pieces),
          skipped: request.skipped,
          ...(request.previousBackupId ? { previousBackupId: request.previousBackupId } : {}),
          totals: {
            pieces: pieces.length,
            bytes: pieces.reduce((s, p) => s + p.size, 0),
            rows: pieces.reduce((s, p) => s + (p.rows ?? 0), 0),
            messages: pieces.reduce((s, p) => s + (p.messages ?? 0), 0),
          },
          pieces,
          complete: lacks.length === 0,
          lacks,
        };
        const signingKey = connections.manifestSigningKey;
        const written = signingKey ? signManifest(manifest, signingKey) : manifest;
        await putJson(s3, bucket, key, written);
        return withoutPieces(written);
      } finally {
        s3.destroy();
      }
    },
  };
}
