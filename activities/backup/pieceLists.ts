import { ApplicationFailure } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BackupPiece, ComponentResult, PieceListRef, StoredPieces } from '../../contracts/backupTypes';
import { Failure } from '../../contracts/failures';
import { backupKey, getJsonWithSha256, putJson } from '../storage/backupObjects';
import type { ActivityDeps } from '../deps';

/** Where a backup step's piece list is kept: in the backup's own folder, deleted with it. */
export function pieceListKey(backupId: string, unit: string): string {
  return backupKey(backupId, 'piece-lists', `${unit}.json`);
}

type BackupActivity = (request: never) => Promise<ComponentResult>;
type StoringActivity<A> = A extends (request: infer R extends { backupId: string }) => Promise<ComponentResult> ? (request: R) => Promise<StoredPieces> : never;

/**
 * The system backup activities, each made to store its piece list in the backup bucket and return
 * where, with the totals the workflow's status shows: the pieces never enter workflow history. A
 * retried attempt finds its finished pieces through their markers (the system activity does that)
 * and stores the list again, so a retry always returns a reference to the whole list.
 */
export function storingPieceLists<T extends Record<string, BackupActivity>>(
  deps: ActivityDeps,
  activities: T,
): { [K in keyof T]: StoringActivity<T[K]> } {
  const bucket = deps.config.objectStore.backupBucket;
  const wrapped: Record<string, unknown> = {};
  for (const [name, activity] of Object.entries(activities)) {
    const run = activity as (request: { backupId: string }) => Promise<ComponentResult>;
    wrapped[name] = async (request: { backupId: string }): Promise<StoredPieces> => {
      const result = await run(request);
      const key = pieceListKey(request.backupId, result.unit);
      const s3 = deps.connections.s3(60_000);
      try {
        const stored = await putJson(s3, bucket, key, result);
        return {
          component: result.component,
          unit: result.unit,
          key,
          sha256: stored.sha256,
          pieces: result.pieces.length,
          bytes: result.pieces.reduce((n, p) => n + p.size, 0),
          rows: result.pieces.reduce((n, p) => n + (p.rows ?? 0), 0),
          messages: result.pieces.reduce((n, p) => n + (p.messages ?? 0), 0),
          resumed: result.resumed,
        };
      } finally {
        s3.destroy();
      }
    };
  }
  return wrapped as { [K in keyof T]: StoringActivity<T[K]> };
}

/**
 * The pieces of the lists, in order, each list read back and refused (non-retryable: no retry
 * brings it back) when it is gone or no longer the bytes its step wrote.
 */
export async function readPieceLists(s3: S3Client, bucket: string, backupId: string, lists: PieceListRef[], onList: () => void): Promise<BackupPiece[]> {
  const pieces: BackupPiece[] = [];
  for (const ref of lists) {
    const stored = await getJsonWithSha256<ComponentResult>(s3, bucket, ref.key);
    if (!stored || stored.sha256 !== ref.sha256 || !Array.isArray(stored.value.pieces)) {
      throw ApplicationFailure.nonRetryable(
        `backup ${backupId} is not complete, no manifest written: its piece list ${ref.key} is ${stored ? 'not the one its step wrote (sha256 differs)' : 'missing'}`,
        Failure.BackupIncomplete,
      );
    }
    pieces.push(...stored.value.pieces);
    onList();
  }
  return pieces;
}
