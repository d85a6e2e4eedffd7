import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { planHash } from '../../activities/approval/approvals';
import { planTablePartitions, retentionCutoff, tablePolicy, type PartitionFound } from '../../activities/clickhouse/maintenancePlan';
import { partitionCut, topicIdentity } from '../../activities/kafka/recordDeletes';
import { topicDrift } from '../../activities/kafka/retention';
import { planSteps } from '../../activities/maintenance/plan';
import { maintenanceSchema } from '../../contracts/maintenanceConfig';
import { nextOpening, openWindow, windowCron, WEEKDAYS } from '../../contracts/maintenanceWindow';
import { ConfigError, parseConfig } from '../../workers/config';
import { minimalConfig as minimal } from '../helpers/minimalConfig';

const everyDay = [...WEEKDAYS];
const at = (iso: string) => new Date(iso);

describe('maintenance window', () => {
  const nightly = { start: '02:00', durationMinutes: 120, days: everyDay };
  it('is open from its start for its duration, closed before and after', () => {
    assert.equal(openWindow(nightly, at('2026-03-04T01:59:59Z')), undefined);
    assert.deepEqual(openWindow(nightly, at('2026-03-04T02:00:00Z')), { opened: at('2026-03-04T02:00:00Z'), closes: at('2026-03-04T04:00:00Z') });
    assert.ok(openWindow(nightly, at('2026-03-04T03:59:59Z')));
    assert.equal(openWindow(nightly, at('2026-03-04T04:00:00Z')), undefined);
  });
  it('runs past midnight into the next day, on the days it opens', () => {
    const late = { start: '23:00', durationMinutes: 180, days: ['sun' as const] };
    // 2026-03-01 is a Sunday.
    assert.deepEqual(openWindow(late, at('2026-03-02T01:30:00Z'))?.opened, at('2026-03-01T23:00:00Z'));
    assert.equal(openWindow(late, at('2026-03-03T01:30:00Z')), undefined, 'Monday night: no window opened');
    assert.deepEqual(nextOpening(late, at('2026-03-02T01:30:00Z')), at('2026-03-08T23:00:00Z'));
  });
  it('gives the schedule a cron that fires as it opens', () => {
    assert.equal(windowCron(nightly), '0 2 * * *');
    assert.equal(windowCron({ start: '02:30', durationMinutes: 120, days: ['sun', 'wed'] }), '30 2 * * 0,3');
  });
});

describe('maintenance config', () => {
  const problems = (maintenance: unknown) => {
    try {
      parseConfig({ ...minimal, maintenance });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('accepted');
  };
  it('is complete from nothing: merges and vacuums on, nothing destructive, the schedule off', () => {
    const m = maintenanceSchema.parse(undefined);
    assert.deepEqual(m.window, { start: '02:00', durationMinutes: 120, days: everyDay });
    assert.equal(m.clickhouse.merge.enabled, true);
    assert.equal(m.postgres.vacuum.enabled, true);
    assert.deepEqual(m.preApproved, []);
    assert.equal(m.schedule.enabled, false);
    assert.equal(parseConfig(minimal).maintenance.window.start, '02:00');
  });
  it('names the field of each bad value', () => {
    assert.deepEqual(problems({ window: { start: '2am' } }), ['maintenance.window.start: must be HH:MM (24-hour, UTC)']);
    assert.deepEqual(problems({ preApproved: ['rowDelete'] }), ['maintenance.preApproved.0: row deletes always wait for an approval; they cannot be pre-approved']);
    assert.deepEqual(problems({ clickhouse: { tables: [{ database: 'analytics', retention: { keepMonths: 3, keepDays: 10 } }] } }), ['maintenance.clickhouse.tables.0.retention: set exactly one of keepMonths and keepDays']);
    assert.deepEqual(problems({ buckets: { expire: [{ prefix: 'reports', keepDays: 30 }] } }), ['maintenance.buckets.expire.0.prefix: must be a folder: not starting with "/", ending with "/"']);
    assert.deepEqual(problems({ schedule: { scheduleId: 'ballast-nightly-backup' } }), ['maintenance.schedule.scheduleId: "ballast-nightly-backup" is also backup.schedule.scheduleId: give each schedule its own id']);
  });
  it('takes a topic policy that only deletes old records, pre-approvable, and refuses it on a compact-only policy or under a day', () => {
    const m = maintenanceSchema.parse({ kafka: { topics: [{ topic: 'events', deleteRecordsOlderThanDays: 30 }] }, preApproved: ['recordDelete'] });
    assert.deepEqual(m.kafka.topics, [{ topic: 'events', deleteRecordsOlderThanDays: 30 }]);
    assert.deepEqual(m.preApproved, ['recordDelete']);
    assert.deepEqual(problems({ kafka: { topics: [{ topic: 'events' }] } }), ['maintenance.kafka.topics.0: set at least one of retentionMs, retentionBytes, cleanupPolicy, deleteRecordsOlderThanDays']);
    assert.deepEqual(problems({ kafka: { topics: [{ topic: 'state', cleanupPolicy: 'compact', deleteRecordsOlderThanDays: 30 }] } }), [
      'maintenance.kafka.topics.0.deleteRecordsOlderThanDays: needs a cleanup.policy with delete: this policy sets cleanupPolicy compact',
    ]);
    assert.deepEqual(problems({ kafka: { topics: [{ topic: 'events', deleteRecordsOlderThanDays: 0 }] } }), ['maintenance.kafka.topics.0.deleteRecordsOlderThanDays: Too small: expected number to be >=1']);
    assert.ok(maintenanceSchema.parse({ kafka: { topics: [{ topic: 'events', cleanupPolicy: 'compact,delete', deleteRecordsOlderThanDays: 1 }] } }));
  });
});

describe('ClickHouse maintenance plan', () => {
  const policies = maintenanceSchema.parse({ clickhouse: { merge: { maxParts: 2 }, tables: [{ database: 'db', table: 'events', retention: { keepMonths: 3 } }, { database: 'db', merge: { maxParts: 4 } }] } }).clickhouse;
  const partition = (id: string, parts: number, maxDate: string, extra: Partial<PartitionFound> = {}): PartitionFound => ({ partitionId: id, partition: id, parts, rows: 100, bytes: 1000, maxDate, modified: '2026-03-01 00:00:00', mergesRunning: 0, ...extra });
  const now = at('2026-03-15T02:00:00Z');
  const table = { database: 'db', table: 'events', engine: 'MergeTree' };

  it('takes the section policy, then the database entry, then the table entry', () => {
    assert.equal(tablePolicy(policies, 'db', 'events').merge.maxParts, 4);
    assert.deepEqual(tablePolicy(policies, 'db', 'events').retention, { keepMonths: 3 });
    assert.equal(tablePolicy(policies, 'other', 'x').merge.maxParts, 2);
    assert.equal(tablePolicy(policies, 'other', 'x').retention, undefined);
  });

  it('keeps whole calendar months, the current one included', () => {
    assert.equal(retentionCutoff({ keepMonths: 3 }, now), '2026-01-01');
    assert.equal(retentionCutoff({ keepDays: 10 }, now), '2026-03-05');
  });

  it('drops partitions older than the cutoff, merges the rest over the limit, never touches the newest, and says why', () => {
    const plan = planTablePartitions(
      table,
      [partition('202510', 9, '2025-10-31'), partition('202512', 1, '2025-12-31'), partition('202601', 9, '2026-01-31'), partition('202602', 3, '2026-02-28'), partition('202603', 9, '2026-03-15')],
      tablePolicy(policies, 'db', 'events'),
      1e12,
      now,
    );
    assert.deepEqual(plan.map((p) => [p.partitionId, p.action]), [['202510', 'drop'], ['202512', 'drop'], ['202601', 'merge'], ['202602', 'none'], ['202603', 'none']]);
    assert.match(plan[0]!.reason, /newest date 2025-10-31 is before 2026-01-01/);
    assert.match(plan[3]!.reason, /3 active part\(s\), not more than 4/);
    assert.match(plan[4]!.reason, /newest partition/);
  });

  it('does not merge without twice the partition free, over the size cap, or while merges run there', () => {
    const policy = tablePolicy(policies, 'x', 'y');
    const reasons = (p: PartitionFound, free: number | undefined) => planTablePartitions(table, [p, partition('new', 1, '2026-03-15')], policy, free, now)[0]!;
    assert.match(reasons(partition('a', 5, '2026-01-01', { bytes: 600 }), 1000).reason, /not enough free disk: 1000 bytes free, a merge needs twice the partition's 600/);
    assert.match(reasons(partition('a', 5, '2026-01-01'), undefined).reason, /free disk space unknown/);
    assert.match(reasons(partition('a', 5, '2026-01-01', { bytes: 60 * 1024 ** 3 }), 1e15).reason, /too big/);
    assert.match(reasons(partition('a', 5, '2026-01-01', { mergesRunning: 1 }), 1e12).reason, /1 merge\(s\) already running/);
    assert.equal(reasons(partition('a', 5, '2026-01-01'), 1e12).action, 'merge');
  });

  it('says when FINAL changes rows', () => {
    const plan = planTablePartitions({ ...table, engine: 'ReplacingMergeTree' }, [partition('a', 5, '2026-01-01'), partition('b', 1, '2026-03-01')], tablePolicy(policies, 'x', 'y'), 1e12, now);
    assert.match(plan[0]!.reason, /FINAL on ReplacingMergeTree collapses rows/);
    const steps = planSteps({ clickhouse: plan, rowDeletes: [], postgres: [], postgresPartitions: [], kafka: [], kafkaRecordDeletes: [], buckets: [] }, () => ({ final: true, maxParts: 2 }));
    assert.equal(steps[0]?.kind === 'merge' && steps[0].changesRows, true);
    assert.match(steps[0]!.summary, /FINAL on ReplacingMergeTree changes rows/);
  });

  it('orders merges and vacuums before the destructive steps, and the same plan has the same hash', () => {
    const plan = planTablePartitions(table, [partition('202510', 1, '2025-10-31'), partition('202601', 9, '2026-01-31'), partition('202603', 1, '2026-03-15')], tablePolicy(policies, 'db', 'events'), 1e12, now);
    const steps = planSteps({ clickhouse: plan, rowDeletes: [], postgres: [{ database: 'shop', schema: 'public', table: 'orders', liveTuples: 10, deadTuples: 5000, action: 'vacuum', reason: '' }], postgresPartitions: [], kafka: [], kafkaRecordDeletes: [], buckets: [] }, () => ({ final: true, maxParts: 4 }));
    assert.deepEqual(steps.map((s) => `${s.kind}:${s.destructive ?? '-'}`), ['merge:-', 'vacuum:-', 'drop:partitionDrop']);
    assert.equal(planHash(steps), planHash(JSON.parse(JSON.stringify(steps))));
    assert.notEqual(planHash(steps), planHash(steps.slice(0, 2)));
  });
});

describe('Kafka retention drift', () => {
  it('lists each configured value that differs from the effective one', () => {
    assert.deepEqual(topicDrift({ topic: 't', retentionMs: 86_400_000, cleanupPolicy: 'delete' }, { 'retention.ms': '3600000', 'cleanup.policy': 'delete', 'retention.bytes': '-1' }), [
      { name: 'retention.ms', from: '3600000', to: '86400000' },
    ]);
    assert.deepEqual(topicDrift({ topic: 't', retentionBytes: -1 }, { 'retention.bytes': '-1' }), []);
  });
});

describe('Kafka record deletes', () => {
  it('cuts each partition at the first record at or after the cutoff, counting the records before it', () => {
    assert.deepEqual(partitionCut(0, 0, 100, 40), { partition: 0, low: 0, high: 100, offset: 40, records: 40 });
    assert.deepEqual(partitionCut(1, 30, 100, 40), { partition: 1, low: 30, high: 100, offset: 40, records: 10 }, 'the log already starts after some old records');
    assert.deepEqual(partitionCut(2, 0, 100, 0), { partition: 2, low: 0, high: 100, offset: 0, records: 0 }, 'every record is newer');
    assert.deepEqual(partitionCut(3, 0, 0, -1), { partition: 3, low: 0, high: 0, offset: 0, records: 0 }, 'an empty partition');
  });

  it('counts everything before the high watermark when no record is that new, and never reaches past it', () => {
    assert.deepEqual(partitionCut(0, 5, 100, -1), { partition: 0, low: 5, high: 100, offset: 100, records: 95 }, 'ListOffsets answers -1');
    assert.deepEqual(partitionCut(0, 5, 100, 100), { partition: 0, low: 5, high: 100, offset: 100, records: 95 }, 'kafkajs puts the high watermark in its place');
    assert.deepEqual(partitionCut(0, 5, 100, 130), { partition: 0, low: 5, high: 100, offset: 100, records: 95 }, 'an answer read after more records arrived');
    assert.deepEqual(partitionCut(0, 50, 100, 20), { partition: 0, low: 50, high: 100, offset: 50, records: 0 }, 'never before the log start');
  });

  it('plans one step per topic with records to delete, listing each partition up to its offset', () => {
    const cutoff = '2026-02-13T02:00:00.000Z';
    const found = [
      { topic: 'events', topicId: 'id-1', cutoff, records: 7, partitions: [partitionCut(0, 0, 10, 4), partitionCut(1, 0, 10, 0), partitionCut(2, 2, 10, 5)] },
      { topic: 'quiet', topicId: 'id-2', cutoff, records: 0, partitions: [partitionCut(0, 0, 10, 0)] },
      { topic: 'gone', cutoff, records: 0, partitions: [], problem: 'the topic does not exist' },
    ];
    const steps = planSteps({ clickhouse: [], rowDeletes: [], postgres: [], postgresPartitions: [], kafka: [], kafkaRecordDeletes: found, buckets: [] }, () => ({ final: true, maxParts: 2 }));
    assert.equal(steps.length, 1);
    const step = steps[0]!;
    assert.ok(step.kind === 'recordDelete');
    assert.equal(step.destructive, 'recordDelete');
    assert.deepEqual(step.partitions, [{ partition: 0, low: 0, offset: 4 }, { partition: 2, low: 2, offset: 5 }]);
    assert.equal(step.summary, `delete 7 record(s) older than ${cutoff} from topic events (partition 0: 4 up to offset 4, partition 2: 3 up to offset 5)`);
  });

  it('knows a topic by the id every answering broker gives it', () => {
    const broker = (entries: [string, string][]) => new Map(entries);
    assert.deepEqual(topicIdentity([broker([['t', 'a']]), undefined, broker([['t', 'a']])], 't'), { id: 'a' });
    assert.deepEqual(topicIdentity([broker([]), broker([])], 't'), { absent: true });
    assert.deepEqual(topicIdentity([broker([['t', 'a']]), broker([['t', 'b']])], 't'), { unsettled: 'a, b' });
    assert.deepEqual(topicIdentity([broker([['t', 'a']]), broker([])], 't'), { unsettled: 'a, not listed' });
    assert.deepEqual(topicIdentity([broker([['t', '00000000-0000-0000-0000-000000000000']])], 't'), { unsettled: '00000000-0000-0000-0000-000000000000' });
    assert.throws(() => topicIdentity([undefined, undefined], 't'), /no Kafka broker answered/);
  });
});
