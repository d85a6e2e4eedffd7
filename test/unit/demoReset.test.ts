import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { planHash } from '../../activities/approval/approvals';
import { purgeNeedsDeletePolicy } from '../../activities/kafka/demoReset';
import { confirmProblem, type GateRequest } from '../../workflows/approval';
import { goldenMismatches, leftovers, planActions, reportRows } from '../../contracts/demoResetRows';
import type { DemoFigures, DemoResetPlan, GoldenReseed } from '../../contracts/demoResetTypes';
import { ConfigError, parseConfig } from '../../workers/config';
import { minimalConfig as minimal } from '../helpers/minimalConfig';


function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('config was accepted');
}

const figures: DemoFigures = {
  kafka: {
    topics: [{ topic: 'state', cleanupPolicy: 'compact', partitions: [{ partition: 0, logStart: 2, highWatermark: 10, messages: 8 }, { partition: 1, logStart: 0, highWatermark: 4, messages: 4 }] }],
    groups: [{ groupId: 'g', members: 0, offsets: [{ topic: 'state', partition: 0, offset: 6 }] }],
  },
  postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 3 }] }],
  objectStore: [{ bucket: 'data', objects: 1, versions: 2, deleteMarkers: 1, bytes: 10 }],
};

describe('demoReset config', () => {
  it('fills the demoReset section from {}', () => {
    const { demoReset } = parseConfig(minimal);
    assert.deepEqual(demoReset.components, ['postgres', 'clickhouse', 'kafka', 'objectStore']);
    assert.deepEqual(demoReset.keep, []);
    assert.equal(demoReset.goldenBackupId, undefined);
    assert.equal(demoReset.kafkaMarkerTopic, '__ballast_demo');
    assert.equal(demoReset.confirmationTimeoutMinutes, 15);
    assert.equal(demoReset.schedule, undefined, 'no schedule unless asked for');
    assert.equal(parseConfig({ ...minimal, demoReset: { schedule: {} } }).demoReset.schedule?.cron, '0 4 * * *');
  });

  it('names bad fields, and refuses a demo reset schedule outside demo and the marker topic among the purged', () => {
    assert.ok(problemsOf({ ...minimal, demoReset: { keep: ['metrics'] } }).some((p) => p.startsWith('demoReset.keep.0')));
    const staging = problemsOf({ ...minimal, environment: 'staging', demoReset: { schedule: {} } });
    assert.ok(staging.some((p) => p.startsWith('demoReset.schedule.enabled') && p.includes('staging')), staging.join('\n'));
    const marker = problemsOf({ ...minimal, demoReset: { kafkaTopics: ['orders', '__ballast_demo'] } });
    assert.ok(marker.some((p) => p.startsWith('demoReset.kafkaTopics.1')), marker.join('\n'));
    assert.ok(problemsOf({ ...minimal, demoReset: { schedule: { cron: 'nightly' } } }).some((p) => p.startsWith('demoReset.schedule.cron')));
  });
});

describe('demoReset plan and report', () => {
  const body = { environment: 'demo', components: ['postgres', 'kafka', 'objectStore'] as DemoResetPlan['components'], kept: ['clickhouse'] as DemoResetPlan['kept'], markers: [], figures, reseed: 'empty' as const };
  const plan: DemoResetPlan = { ...body, hash: planHash(body), actions: planActions(body) };

  it('the hash is stable for the same state and changes with any figure', () => {
    assert.equal(planHash(JSON.parse(JSON.stringify(body))), plan.hash);
    const more = structuredClone(body);
    more.figures.postgres![0]!.tables[0]!.rows = 4;
    assert.notEqual(planHash(more), plan.hash);
  });

  it('lists every destructive action with its real figures, says how a compacted topic is purged, and what is kept', () => {
    assert.deepEqual(plan.actions, [
      'purge messages (cleanup.policy compact: delete added for the purge, then restored): topic state (12 messages in 2 partitions)',
      'move committed offsets to the new log start: consumer group g (1 offsets, lag 4, 0 members)',
      'TRUNCATE ... RESTART IDENTITY CASCADE: postgres shop.public.orders (3 rows)',
      'delete every object version and delete marker (bucket and policy stay): bucket data (1 objects, 2 versions, 1 delete markers, 10 bytes)',
      'keep clickhouse as it is',
      'reseed: none (left empty)',
    ]);
  });

  it('the report has a row per target (before, after) and one per kept component', () => {
    const rows = reportRows(plan, { postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 0 }] }] }, false);
    assert.deepEqual(rows.find((r) => r.target === 'postgres shop.public.orders'), { component: 'postgres', target: 'postgres shop.public.orders', action: 'TRUNCATE ... RESTART IDENTITY CASCADE', before: '3 rows', after: '0 rows', kept: false });
    assert.deepEqual(rows.at(-1), { component: 'clickhouse', target: 'clickhouse', action: 'kept', before: '', after: '', kept: true });
  });

  it('leftovers names whatever is not empty after the wipe', () => {
    assert.deepEqual(leftovers(figures), [
      'kafka state[0]: 8 messages left',
      'kafka state[1]: 4 messages left',
      'postgres shop.public.orders: 3 rows left',
      'bucket data: 2 versions and 1 delete markers left',
    ]);
    assert.deepEqual(leftovers({ objectStore: [{ bucket: 'data', objects: 0, versions: 0, deleteMarkers: 0, bytes: 0 }] }), []);
  });

  it('a purge needs delete in cleanup.policy', () => {
    assert.equal(purgeNeedsDeletePolicy('compact'), true);
    assert.equal(purgeNeedsDeletePolicy('compact,delete'), false);
    assert.equal(purgeNeedsDeletePolicy('delete'), false);
  });
});

describe('demoReset reseeded from a golden backup', () => {
  const golden: GoldenReseed = {
    backupId: 'b1',
    field: 'input.reseed.backup',
    manifestKeyId: 'k1',
    consistencyPoint: '2026-01-01T00:00:00.000Z',
    figures: {
      postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 5 }], checksums: 1 }],
      clickhouse: [],
      kafka: [{ topic: 'state', partitions: [{ partition: 0, messages: 6 }, { partition: 1, messages: 2 }] }],
      objectStore: [{ bucket: 'data', objects: 2, bytes: 7 }],
    },
    tasks: [],
    plan: { key: 'plans/x.json', sha256: 'ab', planHash: 'sha256:cd' },
  };
  const body = { environment: 'demo', components: ['postgres', 'kafka', 'objectStore'] as DemoResetPlan['components'], kept: ['clickhouse'] as DemoResetPlan['kept'], markers: [], figures, reseed: { backup: 'b1' }, golden };
  const plan: DemoResetPlan = { ...body, hash: planHash(body), actions: planActions(body) };
  const equal: DemoFigures = {
    kafka: { topics: [{ topic: 'state', cleanupPolicy: 'compact', partitions: [{ partition: 0, logStart: 8, highWatermark: 14, messages: 6 }, { partition: 1, logStart: 4, highWatermark: 6, messages: 2 }] }], groups: [] },
    postgres: [{ database: 'shop', tables: [{ table: 'public.orders', rows: 5 }] }],
    objectStore: [{ bucket: 'data', objects: 2, versions: 2, deleteMarkers: 0, bytes: 7 }],
  };

  it('the plan lists what the golden backup loads, with its figures', () => {
    assert.deepEqual(plan.actions.slice(-4), [
      'reseed: load golden backup b1 (input.reseed.backup; manifest signed by key k1, consistency point 2026-01-01T00:00:00.000Z) with the restore\'s own steps, into the demo\'s own names',
      'load from golden backup b1: postgres shop.public.orders (5 rows)',
      'load from golden backup b1: topic state (8 messages in 2 partitions)',
      'load from golden backup b1: bucket data (2 objects, 7 bytes)',
    ]);
  });

  it('the report rows give the golden figure before and the measured one after', () => {
    const rows = reportRows(plan, equal, false).filter((r) => r.action === 'load from golden backup b1');
    assert.deepEqual(rows.map((r) => [r.target, r.before, r.after]), [
      ['postgres shop.public.orders', 'golden: 5 rows', '5 rows'],
      ['topic state', 'golden: 8 messages in 2 partitions', '8 messages in 2 partitions'],
      ['bucket data', 'golden: 2 objects, 7 bytes', '2 objects, 7 bytes'],
    ]);
  });

  it('the end state equals the golden figures, partition by partition, with no older versions and nothing extra', () => {
    assert.deepEqual(goldenMismatches(equal, golden), []);
    const off = structuredClone(equal);
    off.kafka!.topics[0]!.partitions[0]!.messages = 7;
    off.kafka!.topics[0]!.partitions[1]!.messages = 1;
    off.postgres![0]!.tables.push({ table: 'public.extra', rows: 1 });
    off.objectStore![0]!.versions = 3;
    assert.deepEqual(goldenMismatches(off, golden), [
      'kafka state[0]: 7 messages, the golden backup holds 6',
      'kafka state[1]: 1 messages, the golden backup holds 2',
      'postgres shop.public.extra: 1 rows, not in the golden backup',
      'bucket data: 3 versions and 0 delete markers for 2 objects: older versions left',
    ]);
  });
});

describe('typed confirmation', () => {
  const request: GateRequest = {
    what: 'demo reset',
    plan: { hash: 'sha256:aa', actions: [] },
    requester: 'alice',
    policy: { unsignedAllowed: true, approvers: [], fourEyes: true, reminderAfterMinutes: 1, timeoutMinutes: 2 },
    typedEnvironment: 'demo',
  };
  it('needs the typed environment, the plan hash and a reason', () => {
    assert.equal(confirmProblem({ environment: 'demo', plan: 'sha256:aa', by: 'bob', reason: 'r' }, request), undefined);
    assert.match(confirmProblem({ environment: 'Demo', plan: 'sha256:aa', by: 'bob', reason: 'r' }, request)!, /not this run's environment/);
    assert.match(confirmProblem({ environment: 'demo', plan: 'sha256:bb', by: 'bob', reason: 'r' }, request)!, /waits on plan sha256:aa/);
    assert.match(confirmProblem({ environment: 'demo', plan: 'sha256:aa', by: 'alice', reason: 'r' }, request)!, /four-eyes/);
    assert.match(confirmProblem({ environment: 'demo', plan: 'sha256:aa', by: 'bob', reason: 'r' }, { ...request, typedEnvironment: undefined })!, /not for a typed confirmation/);
  });
});
