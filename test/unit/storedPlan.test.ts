import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { buildTasks } from '../../activities/restore/plan';
import { approvedTask, hashOfPlan, readApprovedPlan, storePlan, taskHandle, type StoredRestorePlan } from '../../activities/restore/storedPlan';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreTargets } from '../../contracts/restoreTypes';
import { memoryS3 } from '../helpers/memoryS3';

const piece = (name: string, size: number): BackupPiece => ({
  component: 'clickhouse',
  name,
  key: `backups/b/clickhouse/${name}`,
  size,
  sha256: 'ab',
  rows: 1,
  snapshotAt: '',
  startedAt: '',
  finishedAt: '',
  durationMs: 0,
});

function plan(): StoredRestorePlan {
  const targets: RestoreTargets = { postgres: {}, clickhouse: { analytics: 'analytics_copy' }, kafkaSuffix: '', buckets: {} };
  const pieces = [piece('analytics.events/schema', 10), ...Array.from({ length: 3 }, (_, i) => piece(`analytics.events/${i}`, 100))];
  const actions = [{ component: 'clickhouse' as const, action: 'create table', target: 'analytics_copy.events', detail: '' }];
  const base = { backupId: 'b', components: ['clickhouse' as const], targets, actions };
  return {
    ...base,
    environment: 'test',
    consistencyPoint: '',
    backupStartedAt: '',
    notInBackup: [],
    backupComplete: true,
    backupLacks: [],
    warnings: [],
    tasks: buildTasks(pieces, targets),
    planHash: hashOfPlan(base),
    totalBytes: 310,
    checkedObjects: 4,
    checksumsVerified: true,
  };
}

describe('a restore plan stored by reference', () => {
  it('gives the workflow each task without its pieces: names, index, bytes and piece count', () => {
    const handle = taskHandle(plan().tasks[0]!, 0);
    assert.deepEqual(handle, { component: 'clickhouse', kind: 'clickhouseTable', database: 'analytics', table: 'events', target: 'analytics_copy', index: 0, bytes: 310, pieces: 4 });
  });

  it('gives a step the approved plan\'s task back, and refuses a task of another kind', async () => {
    const { s3 } = memoryS3();
    const ref = await storePlan(s3, 'backups', 'reports/plans/r/1.json', plan());
    const read = await readApprovedPlan(s3, 'backups', ref);
    assert.equal(approvedTask(read, 0, 'clickhouseTable').pieces.length, 4);
    assert.throws(() => approvedTask(read, 0, 'bucket'), /no bucket task at index 0/);
    assert.throws(() => approvedTask(read, 1, 'clickhouseTable'), /no clickhouseTable task at index 1/);
  });

  it('refuses a stored plan changed after approval, even one whose plan hash still matches', async () => {
    const { s3, objects } = memoryS3();
    const ref = await storePlan(s3, 'backups', 'reports/plans/r/1.json', plan());
    // The pieces are not in the plan hash: a changed piece key keeps it, and is refused all the same.
    const tampered = plan();
    const task = tampered.tasks[0]!;
    assert.ok(task.kind === 'clickhouseTable');
    task.pieces[1]!.key = 'backups/other/clickhouse/analytics.events/0';
    objects.set(ref.key, Buffer.from(JSON.stringify(tampered)));
    await assert.rejects(readApprovedPlan(s3, 'backups', ref), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'PlanNotApproved');
      assert.match(err.message, /has changed since it was approved/);
      return true;
    });
  });

  it('refuses a plan whose hash is not the approved one, and a plan that is gone', async () => {
    const { s3, objects } = memoryS3();
    const ref = await storePlan(s3, 'backups', 'reports/plans/r/1.json', plan());
    await assert.rejects(readApprovedPlan(s3, 'backups', { ...ref, planHash: `sha256:${'0'.repeat(64)}` }), /hashes to sha256:[0-9a-f]{64}, not the approved/);
    objects.clear();
    await assert.rejects(readApprovedPlan(s3, 'backups', ref), /is gone/);
  });
});
