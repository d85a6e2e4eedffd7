import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { planHash } from '../../activities/approval/approvals';
import { purgeNeedsDeletePolicy } from '../../activities/kafka/demoReset';
import { confirmProblem, type GateRequest } from '../../workflows/approval';
import { leftovers, planActions, reportRows } from '../../contracts/demoResetRows';
import type { DemoFigures, DemoResetPlan } from '../../contracts/demoResetTypes';
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
