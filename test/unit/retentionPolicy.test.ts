import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isoWeekKey, selectRetention, type BackupEntry, type BackupState, type RetentionPolicy } from '../../activities/backup/retentionPolicy';

const at = (iso: string, state: BackupState = 'complete'): BackupEntry => ({ id: iso, startedAt: new Date(iso), state });
const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ daily: 0, weekly: 0, monthly: 0, partial: 0, incompleteGraceHours: 24, ...p });
const kept = (backups: BackupEntry[], p: Partial<RetentionPolicy>, now = '2026-12-31T00:00:00Z') =>
  selectRetention(backups, policy(p), new Date(now)).keep.map((k) => k.id).sort();

describe('retention selection', () => {
  it('keeps the newest backup of each of the last N days, across a UTC midnight', () => {
    const backups = [
      at('2026-11-20T02:00:00Z'),
      at('2026-11-20T23:59:59Z'),
      at('2026-11-21T00:00:00Z'),
      at('2026-11-21T02:00:00Z'),
      at('2026-11-22T02:00:00Z'),
    ];
    assert.deepEqual(kept(backups, { daily: 2 }), ['2026-11-21T02:00:00Z', '2026-11-22T02:00:00Z']);
    assert.deepEqual(kept(backups, { daily: 3 }), ['2026-11-20T23:59:59Z', '2026-11-21T02:00:00Z', '2026-11-22T02:00:00Z']);
  });

  it('counts days that have backups, not calendar days, so a gap does not eat the policy', () => {
    const backups = [at('2026-11-01T02:00:00Z'), at('2026-11-10T02:00:00Z'), at('2026-11-22T02:00:00Z')];
    assert.deepEqual(kept(backups, { daily: 2 }), ['2026-11-10T02:00:00Z', '2026-11-22T02:00:00Z']);
  });

  it('uses ISO weeks starting on Monday for weekly', () => {
    // 2026-11-22 is a Sunday, 2026-11-23 a Monday.
    assert.equal(isoWeekKey(new Date('2026-11-22T23:00:00Z')), '2026-W47');
    assert.equal(isoWeekKey(new Date('2026-11-23T00:00:00Z')), '2026-W48');
    // ISO week 1 of 2027 starts on Monday 2027-01-04; Friday 2027-01-01 is in 2026-W53.
    assert.equal(isoWeekKey(new Date('2027-01-01T12:00:00Z')), '2026-W53');
    const backups = [at('2026-11-16T02:00:00Z'), at('2026-11-22T02:00:00Z'), at('2026-11-23T02:00:00Z')];
    assert.deepEqual(kept(backups, { weekly: 2 }), ['2026-11-22T02:00:00Z', '2026-11-23T02:00:00Z']);
    assert.deepEqual(kept(backups, { weekly: 1 }), ['2026-11-23T02:00:00Z']);
  });

  it('keeps the newest backup of each of the last N months, across a month boundary', () => {
    const backups = [
      at('2026-09-15T02:00:00Z'),
      at('2026-10-01T02:00:00Z'),
      at('2026-10-31T23:00:00Z'),
      at('2026-11-01T00:30:00Z'),
    ];
    assert.deepEqual(kept(backups, { monthly: 2 }), ['2026-10-31T23:00:00Z', '2026-11-01T00:30:00Z']);
  });

  it('combines the rules and gives every reason a backup is kept', () => {
    const backups = [at('2026-10-31T02:00:00Z'), at('2026-11-21T02:00:00Z'), at('2026-11-22T02:00:00Z')];
    const decision = selectRetention(backups, policy({ daily: 1, weekly: 1, monthly: 2 }), new Date('2026-11-22T03:00:00Z'));
    const reasons = Object.fromEntries(decision.keep.map((k) => [k.id, k.reasons]));
    assert.deepEqual(reasons['2026-11-22T02:00:00Z'], ['daily 2026-11-22', 'weekly 2026-W47', 'monthly 2026-11', 'newest complete backup']);
    assert.deepEqual(reasons['2026-10-31T02:00:00Z'], ['monthly 2026-10']);
    assert.deepEqual(decision.delete, [{ id: '2026-11-21T02:00:00Z', reason: 'complete, outside the retention policy' }]);
  });

  it('never deletes the newest complete backup, even with a policy of zero', () => {
    const backups = [at('2026-11-21T02:00:00Z'), at('2026-11-22T02:00:00Z'), at('2026-11-22T05:00:00Z', 'incomplete')];
    const decision = selectRetention(backups, policy({}), new Date('2026-11-22T06:00:00Z'));
    assert.deepEqual(decision.keep.map((k) => k.id).sort(), ['2026-11-22T02:00:00Z', '2026-11-22T05:00:00Z']);
    assert.deepEqual(decision.delete.map((d) => d.id), ['2026-11-21T02:00:00Z']);
  });

  it('takes the running backup as the newest when another started in the same second', () => {
    // Ids have one-second resolution; the tie was once broken by the ids' random suffix.
    for (const [first, second] of [['a', 'b'], ['b', 'a']]) {
      const earlier: BackupEntry = { id: first!, startedAt: new Date('2026-11-22T02:00:00Z'), state: 'complete' };
      const running: BackupEntry = { id: second!, startedAt: new Date('2026-11-22T02:00:00Z'), state: 'complete', current: true };
      const decision = selectRetention([earlier, running], policy({}), new Date('2026-11-22T02:00:01Z'));
      assert.deepEqual(decision.keep, [{ id: second, reasons: ['newest complete backup'] }]);
      assert.deepEqual(decision.delete.map((d) => d.id), [first]);
    }
  });

  it('never counts an incomplete backup as the newest, and deletes it only after the grace period', () => {
    const backups = [at('2026-11-20T02:00:00Z'), at('2026-11-21T02:00:00Z', 'incomplete'), at('2026-11-22T02:00:00Z', 'incomplete')];
    const decision = selectRetention(backups, policy({ incompleteGraceHours: 12 }), new Date('2026-11-22T06:00:00Z'));
    assert.deepEqual(decision.keep.map((k) => k.id).sort(), ['2026-11-20T02:00:00Z', '2026-11-22T02:00:00Z']);
    assert.deepEqual(decision.delete, [
      { id: '2026-11-21T02:00:00Z', reason: 'incomplete (no manifest) and older than the 12 h grace period' },
    ]);
  });

  it('counts only complete backups in the slots: a newer partial one never takes the day, week or month of a complete one', () => {
    const backups = [
      at('2026-10-31T02:00:00Z'),
      at('2026-11-21T02:00:00Z'),
      at('2026-11-22T02:00:00Z'),
      at('2026-11-22T05:00:00Z', 'partial'),
      at('2026-11-23T02:00:00Z', 'partial'),
    ];
    const decision = selectRetention(backups, policy({ daily: 1, weekly: 1, monthly: 2, partial: 5 }), new Date('2026-11-23T03:00:00Z'));
    const reasons = Object.fromEntries(decision.keep.map((k) => [k.id, k.reasons]));
    assert.deepEqual(reasons['2026-11-22T02:00:00Z'], ['daily 2026-11-22', 'weekly 2026-W47', 'monthly 2026-11', 'newest complete backup']);
    assert.deepEqual(reasons['2026-10-31T02:00:00Z'], ['monthly 2026-10']);
    assert.deepEqual(reasons['2026-11-23T02:00:00Z'], ['partial, one of the 5 newest partial backups']);
    assert.deepEqual(decision.delete, [{ id: '2026-11-21T02:00:00Z', reason: 'complete, outside the retention policy' }]);
  });

  it('keeps the newest N partial backups besides, and deletes older partial ones', () => {
    const backups = [
      at('2026-11-20T02:00:00Z', 'partial'),
      at('2026-11-21T02:00:00Z', 'partial'),
      at('2026-11-22T02:00:00Z', 'partial'),
      at('2026-11-19T02:00:00Z'),
    ];
    const decision = selectRetention(backups, policy({ daily: 7, partial: 2 }), new Date('2026-11-22T03:00:00Z'));
    assert.deepEqual(decision.keep.map((k) => k.id).sort(), ['2026-11-19T02:00:00Z', '2026-11-21T02:00:00Z', '2026-11-22T02:00:00Z']);
    assert.deepEqual(decision.delete, [{ id: '2026-11-20T02:00:00Z', reason: 'partial, older than the 2 newest partial backups' }]);
  });

  it('with partial 0, keeps no partial backup but the running one', () => {
    const running: BackupEntry = { ...at('2026-11-22T02:00:00Z', 'partial'), current: true };
    const decision = selectRetention([at('2026-11-21T02:00:00Z', 'partial'), running, at('2026-11-20T02:00:00Z')], policy({}), new Date('2026-11-22T03:00:00Z'));
    assert.deepEqual(decision.keep, [
      { id: '2026-11-20T02:00:00Z', reasons: ['newest complete backup'] },
      { id: '2026-11-22T02:00:00Z', reasons: ['partial, the backup applying retention'] },
    ]);
    assert.deepEqual(decision.delete.map((d) => d.id), ['2026-11-21T02:00:00Z']);
  });

  it('neither counts nor deletes a backup whose manifest fails its check', () => {
    const forged: BackupEntry = { ...at('2026-11-23T02:00:00Z', 'untrusted'), problem: 'its signature does not match its content' };
    const decision = selectRetention([at('2026-11-01T02:00:00Z'), at('2026-11-22T02:00:00Z'), forged], policy({ daily: 1 }), new Date('2026-11-23T03:00:00Z'));
    assert.deepEqual(decision.keep.find((k) => k.id === forged.id)?.reasons, ['its manifest fails its check, kept for a person to look at: its signature does not match its content']);
    assert.ok(decision.keep.some((k) => k.id === '2026-11-22T02:00:00Z' && k.reasons.includes('daily 2026-11-22')), 'the forged newer backup takes no slot');
    assert.deepEqual(decision.delete.map((d) => d.id), ['2026-11-01T02:00:00Z']);
  });

  it('deletes nothing when there is nothing to delete', () => {
    assert.deepEqual(selectRetention([], policy({ daily: 7 }), new Date()), { keep: [], delete: [] });
  });
});
