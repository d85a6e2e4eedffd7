import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { retentionCutoff } from '../../activities/clickhouse/maintenancePlan';
import { planSteps } from '../../activities/maintenance/plan';
import { boundInstant, judgePartition, keyProblem, parseBounds, partitionCutoff } from '../../activities/postgres/partitionRetentionPlan';
import type { PostgresPartitionPlan } from '../../contracts/maintenanceTypes';
import { ConfigError, parseConfig } from '../../workers/config';
import { minimalConfig as minimal } from '../helpers/minimalConfig';

const at = (iso: string) => new Date(iso);

describe('Postgres partition retention: bounds and cutoff', () => {
  it('cuts at the first kept day, 00:00 UTC: whole calendar months (the current one included) or days', () => {
    assert.equal(partitionCutoff({ keepMonths: 3 }, at('2026-03-15T02:00:00Z')), '2026-01-01T00:00:00.000Z');
    assert.equal(partitionCutoff({ keepMonths: 1 }, at('2026-01-31T23:59:59Z')), '2026-01-01T00:00:00.000Z');
    assert.equal(partitionCutoff({ keepDays: 10 }, at('2026-03-15T02:00:00Z')), '2026-03-05T00:00:00.000Z');
    assert.equal(partitionCutoff({ keepDays: 1 }, at('2026-03-01T23:59:59Z')), '2026-02-28T00:00:00.000Z');
    assert.equal(partitionCutoff({ keepMonths: 14 }, at('2026-03-15T02:00:00Z')), '2025-02-01T00:00:00.000Z');
  });

  it('keeps what ClickHouse retention keeps under the same policy', () => {
    for (const now of ['2026-01-01T00:00:00Z', '2026-03-31T23:59:59Z', '2028-02-29T12:00:00Z', '2026-12-31T05:00:00Z']) {
      for (const policy of [{ keepMonths: 1 }, { keepMonths: 3 }, { keepMonths: 13 }, { keepDays: 1 }, { keepDays: 30 }, { keepDays: 400 }]) {
        assert.equal(partitionCutoff(policy, at(now)), `${retentionCutoff(policy, at(now))}T00:00:00.000Z`, `${JSON.stringify(policy)} at ${now}`);
      }
    }
  });

  it('parses the bounds pg_get_expr writes', () => {
    assert.deepEqual(parseBounds('DEFAULT'), { kind: 'default' });
    assert.deepEqual(parseBounds("FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"), { kind: 'range', from: [{ literal: '2026-01-01' }], to: [{ literal: '2026-02-01' }] });
    assert.deepEqual(parseBounds("FOR VALUES FROM (MINVALUE) TO ('2025-01-01 07:00:00.5+00')"), { kind: 'range', from: [{ word: 'MINVALUE' }], to: [{ literal: '2025-01-01 07:00:00.5+00' }] });
    assert.deepEqual(parseBounds("FOR VALUES FROM ('2026-01-01', 1) TO ('2026-02-01', MAXVALUE)"), { kind: 'range', from: [{ literal: '2026-01-01' }, { word: '1' }], to: [{ literal: '2026-02-01' }, { word: 'MAXVALUE' }] });
    assert.deepEqual(parseBounds("FOR VALUES FROM ('a''b, c') TO ('d')"), { kind: 'range', from: [{ literal: "a'b, c" }], to: [{ literal: 'd' }] });
    assert.deepEqual(parseBounds("FOR VALUES IN ('2026-01-01')"), { kind: 'other' });
    assert.deepEqual(parseBounds('FOR VALUES WITH (modulus 4, remainder 0)'), { kind: 'other' });
    assert.deepEqual(parseBounds("FOR VALUES FROM ('2026-01-01',) TO ('2026-02-01')"), { kind: 'other' }, 'a dangling comma is not a value');
  });

  it('reads dates and timestamps as UTC instants, timestamptz with its offset, and rounds a fraction of a millisecond up', () => {
    assert.equal(boundInstant('2026-02-01'), Date.parse('2026-02-01T00:00:00Z'));
    assert.equal(boundInstant('2026-02-01 00:00:00'), Date.parse('2026-02-01T00:00:00Z'));
    assert.equal(boundInstant('2026-02-01 00:00:00+00'), Date.parse('2026-02-01T00:00:00Z'));
    assert.equal(boundInstant('2026-02-01 05:30:00+05:30'), Date.parse('2026-02-01T00:00:00Z'));
    assert.equal(boundInstant('2026-01-31 19:00:00-05'), Date.parse('2026-02-01T00:00:00Z'));
    assert.equal(boundInstant('2026-02-01 00:00:00.000001'), Date.parse('2026-02-01T00:00:00.001Z'));
    assert.equal(boundInstant('2026-02-01 00:00:00.25'), Date.parse('2026-02-01T00:00:00.250Z'));
    for (const unreadable of ['infinity', '-infinity', '2026-02-01 BC', '12026-02-01', '2026-2-1']) assert.equal(boundInstant(unreadable), undefined, unreadable);
  });

  it('drops a partition whose upper bound is at or before the cutoff, keeps the rest, and says why', () => {
    const cutoff = '2026-01-01T00:00:00.000Z';
    assert.equal(judgePartition("FOR VALUES FROM ('2025-12-01') TO ('2026-01-01')", cutoff).action, 'drop', 'ends exactly at the cutoff');
    assert.match(judgePartition("FOR VALUES FROM ('2025-11-01') TO ('2025-12-01')", cutoff).reason, /upper bound '2025-12-01' is at or before the cutoff 2026-01-01T00:00:00.000Z/);
    assert.equal(judgePartition("FOR VALUES FROM (MINVALUE) TO ('2025-06-01 00:00:00+00')", cutoff).action, 'drop');
    const kept = judgePartition("FOR VALUES FROM ('2025-12-15') TO ('2026-01-15')", cutoff);
    assert.deepEqual(kept, { action: 'none', reason: "upper bound '2026-01-15' is after the cutoff 2026-01-01T00:00:00.000Z: kept" });
    assert.equal(judgePartition("FOR VALUES FROM ('2025-12-01 00:00:00') TO ('2026-01-01 00:00:00.000001')", cutoff).action, 'none', 'a microsecond past the cutoff is past it');
    assert.match(judgePartition('DEFAULT', cutoff).reason, /DEFAULT partition holds rows of any date: never dropped/);
    assert.match(judgePartition("FOR VALUES FROM ('2025-01-01') TO (MAXVALUE)", cutoff).reason, /upper bound MAXVALUE: open-ended/);
    assert.match(judgePartition("FOR VALUES FROM ('2025-01-01') TO ('infinity')", cutoff).reason, /'infinity' is not a date or timestamp retention can read: kept/);
    assert.match(judgePartition("FOR VALUES FROM ('2025-01-01', 1) TO ('2025-02-01', 1)", cutoff).reason, /not a range on one column/);
    assert.match(judgePartition("FOR VALUES IN ('2025-01-01')", cutoff).reason, /not a range on one column/);
  });

  it('judges only RANGE keys on one date, timestamp or timestamptz column', () => {
    const key = { definition: 'RANGE (d)', strategy: 'r', columns: 1, type: 'date' };
    assert.equal(keyProblem(key), undefined);
    assert.equal(keyProblem({ ...key, type: 'timestamp with time zone' }), undefined);
    assert.equal(keyProblem({ ...key, type: 'timestamp without time zone' }), undefined);
    assert.match(keyProblem({ ...key, definition: 'LIST (d)', strategy: 'l' })!, /partitioned by LIST \(d\): LIST partitions have no upper bound in time/);
    assert.match(keyProblem({ ...key, definition: 'HASH (id)', strategy: 'h', type: 'integer' })!, /HASH/);
    assert.match(keyProblem({ ...key, definition: 'RANGE (d, k)', columns: 2 })!, /a key of 2 columns/);
    assert.match(keyProblem({ ...key, definition: 'RANGE ((d + 1))', type: undefined })!, /the key is an expression/);
    assert.match(keyProblem({ ...key, definition: 'RANGE (id)', type: 'bigint' })!, /the key column is bigint; retention judges only RANGE partitions on one date, timestamp or timestamptz column/);
  });

  it('makes one partitionDrop step per partition to drop, after the vacuums, naming database, parent, partition, bounds, rows and bytes', () => {
    const found: PostgresPartitionPlan[] = [
      {
        database: 'shop',
        table: 'public.events',
        oid: 100,
        key: 'RANGE (d)',
        cutoff: '2026-01-01T00:00:00.000Z',
        partitions: [
          { schema: 'public', name: 'events_2025_11', oid: 101, bounds: "FOR VALUES FROM ('2025-11-01') TO ('2025-12-01')", rows: 7, rowsCounted: true, bytes: 8192, action: 'drop', reason: 'old' },
          { schema: 'public', name: 'events_2026_01', oid: 102, bounds: "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')", rows: 9, rowsCounted: false, bytes: 8192, action: 'none', reason: 'kept' },
        ],
      },
      { database: 'shop', table: 'public.plain', cutoff: '2026-01-01T00:00:00.000Z', problem: 'public.plain is a plain table, not a partitioned table', partitions: [] },
    ];
    const steps = planSteps({ clickhouse: [], rowDeletes: [], postgres: [{ database: 'shop', schema: 'public', table: 'orders', liveTuples: 10, deadTuples: 5000, action: 'vacuum', reason: '' }], postgresPartitions: found, kafka: [], kafkaRecordDeletes: [], buckets: [] }, () => ({ final: true, maxParts: 2 }));
    assert.deepEqual(steps.map((s) => `${s.kind}:${s.destructive ?? '-'}`), ['vacuum:-', 'pgPartitionDrop:partitionDrop']);
    const drop = steps[1]!;
    assert.equal(drop.summary, "DETACH and DROP partition public.events_2025_11 of public.events in database shop (FOR VALUES FROM ('2025-11-01') TO ('2025-12-01')): 7 rows, 8192 bytes (old)");
    assert.deepEqual(drop.kind === 'pgPartitionDrop' && [drop.schema, drop.table, drop.parentOid, drop.partition, drop.partitionOid, drop.before], ['public', 'events', 100, 'events_2025_11', 101, { rows: 7, bytes: 8192 }]);
  });
});

describe('Postgres partition retention: config', () => {
  const problems = (retention: unknown, databases: string[] = ['shop']) => {
    try {
      parseConfig({ ...minimal, postgres: { ...minimal.postgres, databases }, maintenance: { postgres: { retention } } });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems;
    }
    assert.fail('accepted');
  };

  it('is off unless listed', () => {
    assert.deepEqual(parseConfig(minimal).maintenance.postgres.retention, []);
    assert.deepEqual(parseConfig({ ...minimal, maintenance: { postgres: { retention: [{ table: 'public.events', keepMonths: 3 }] } } }).maintenance.postgres.retention, [{ table: 'public.events', keepMonths: 3 }]);
  });

  it('names the field of each bad value', () => {
    assert.deepEqual(problems([{ table: 'events', keepMonths: 3 }]), ['maintenance.postgres.retention.0.table: must be schema.table']);
    assert.deepEqual(problems([{ table: 'public.events; DROP TABLE x', keepMonths: 3 }]), ['maintenance.postgres.retention.0.table: must be schema.table']);
    assert.deepEqual(problems([{ table: 'public.events', keepMonths: 3, keepDays: 30 }]), ['maintenance.postgres.retention.0: set exactly one of keepMonths and keepDays']);
    assert.deepEqual(problems([{ table: 'public.events' }]), ['maintenance.postgres.retention.0: set exactly one of keepMonths and keepDays']);
    assert.deepEqual(problems([{ table: 'public.events', keepDays: 0 }]), ['maintenance.postgres.retention.0.keepDays: Too small: expected number to be >=1']);
    assert.deepEqual(problems([{ database: 'sh-op', table: 'public.events', keepDays: 3 }]), [
      'maintenance.postgres.retention.0.database: must be a plain SQL identifier (letters, digits, underscore)',
      'maintenance.postgres.retention.0.database: "sh-op" is not in postgres.databases (shop)',
    ]);
  });

  it('acts only on the databases of postgres.databases, each table by one policy', () => {
    assert.deepEqual(problems([{ database: 'billing', table: 'public.events', keepMonths: 3 }]), ['maintenance.postgres.retention.0.database: "billing" is not in postgres.databases (shop)']);
    assert.deepEqual(problems([{ table: 'public.events', keepMonths: 3 }, { database: 'audit', table: 'public.events', keepDays: 90 }], ['shop', 'audit']), [
      'maintenance.postgres.retention.1: public.events in database "audit" already has a retention policy (maintenance.postgres.retention.0): one policy per table',
    ]);
    assert.doesNotThrow(() => parseConfig({ ...minimal, postgres: { ...minimal.postgres, databases: ['shop', 'audit'] }, maintenance: { postgres: { retention: [{ database: 'shop', table: 'public.events', keepMonths: 3 }, { database: 'audit', table: 'public.events', keepDays: 90 }] } } }));
  });
});
