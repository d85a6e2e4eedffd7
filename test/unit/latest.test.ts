import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { resolveLatest, type Inspected } from '../../activities/restore/latest';

type Backup = Inspected<string>;
const complete: Backup = { kind: 'usable', complete: true, lacks: [], value: 'manifest' };
const partial: Backup = { kind: 'usable', complete: false, lacks: [{ component: 'clickhouse', reason: 'ClickHouse down for maintenance' }], value: 'manifest' };

/** Inspects from a table, recording which backups were looked at. */
function bucket(backups: Record<string, Backup>) {
  const inspected: string[] = [];
  const ids = Object.keys(backups).sort();
  return {
    inspected,
    resolve: () =>
      resolveLatest(ids, async (id) => {
        inspected.push(id);
        return backups[id]!;
      }),
  };
}

describe('"latest"', () => {
  it('is the newest complete backup, passing over newer partial ones and folders without a manifest', async () => {
    const b = bucket({ '2026-11-20': complete, '2026-11-21': complete, '2026-11-22': partial, '2026-11-23': { kind: 'no manifest' } });
    assert.deepEqual(await b.resolve(), {
      kind: 'found',
      backupId: '2026-11-21',
      value: 'manifest',
      passedOver: [{ backupId: '2026-11-22', reason: 'partial: it lacks clickhouse (ClickHouse down for maintenance)' }],
    });
    assert.deepEqual(b.inspected, ['2026-11-23', '2026-11-22', '2026-11-21'], 'stops at the first complete one, newest first');
  });

  it('stops at a manifest that fails its check instead of falling back to an older backup', async () => {
    const b = bucket({ '2026-11-20': complete, '2026-11-21': partial, '2026-11-22': { kind: 'refused', problem: 'its signature does not match its content' } });
    assert.deepEqual(await b.resolve(), { kind: 'refused', backupId: '2026-11-22', problem: 'its signature does not match its content', passedOver: [] });
    assert.deepEqual(b.inspected, ['2026-11-22']);
  });

  it('finds none when every backup is partial or unfinished, and says which were passed over', async () => {
    const result = await bucket({ '2026-11-21': partial, '2026-11-22': { kind: 'no manifest' } }).resolve();
    assert.equal(result.kind, 'none');
    assert.deepEqual(result.passedOver.map((p) => p.backupId), ['2026-11-21']);
    assert.deepEqual(await bucket({}).resolve(), { kind: 'none', passedOver: [] });
  });
});
