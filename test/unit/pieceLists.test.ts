import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pieceListKey, readPieceLists, storingPieceLists } from '../../activities/backup/pieceLists';
import type { ActivityDeps } from '../../activities/deps';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import { memoryS3 } from '../helpers/memoryS3';

const BACKUP_ID = '2026-11-22T02-00-00Z-1a2b3c';

const piece = (name: string, size: number, rows: number): BackupPiece => ({
  component: 'clickhouse',
  name,
  key: `backups/${BACKUP_ID}/clickhouse/${name}`,
  size,
  rows,
  snapshotAt: '',
  startedAt: '',
  finishedAt: '',
  durationMs: 0,
});

describe('backup piece lists, by reference', () => {
  const { s3, objects } = memoryS3();
  const deps = { config: { objectStore: { backupBucket: 'backups' } }, connections: { s3: () => Object.assign(s3, { destroy: () => undefined }) } } as unknown as ActivityDeps;
  const partitions = Array.from({ length: 3 }, (_, i) => piece(`analytics.events/${i}`, 100, 10));
  const { backupClickHouseTable } = storingPieceLists(deps, {
    backupClickHouseTable: async (_req: { backupId: string; table: string }): Promise<ComponentResult> => ({ component: 'clickhouse', unit: 'clickhouse analytics.events', pieces: partitions, resumed: true }),
  });

  it('a step stores its pieces and returns where, with its totals', async () => {
    const stored = await backupClickHouseTable({ backupId: BACKUP_ID, table: 'events' });
    assert.deepEqual({ ...stored, sha256: stored.sha256.length }, {
      component: 'clickhouse',
      unit: 'clickhouse analytics.events',
      key: pieceListKey(BACKUP_ID, 'clickhouse analytics.events'),
      sha256: 64,
      pieces: 3,
      bytes: 300,
      rows: 30,
      messages: 0,
      resumed: true,
    });
    assert.match(stored.key, new RegExp(`^backups/${BACKUP_ID}/piece-lists/`), 'in the backup\'s own folder');
    assert.deepEqual(await readPieceLists(s3, 'backups', BACKUP_ID, [stored], () => undefined), partitions);
  });

  it('the manifest refuses a list changed since its step wrote it, and one that is gone', async () => {
    const stored = await backupClickHouseTable({ backupId: BACKUP_ID, table: 'events' });
    const changed = JSON.parse(objects.get(stored.key)!.toString()) as ComponentResult;
    changed.pieces[0]!.key = 'backups/elsewhere/x';
    objects.set(stored.key, Buffer.from(JSON.stringify(changed, null, 2)));
    await assert.rejects(readPieceLists(s3, 'backups', BACKUP_ID, [stored], () => undefined), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'BackupIncomplete');
      assert.match(err.message, /not the one its step wrote/);
      return true;
    });
    objects.delete(stored.key);
    await assert.rejects(readPieceLists(s3, 'backups', BACKUP_ID, [stored], () => undefined), /is missing/);
  });
});
