import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import type { HealthCheckInput, SystemHealth, SystemName } from '../../contracts/healthTypes';
import { healthCheckStatusQuery, type healthCheck } from '../../workflows/healthCheck';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake activities: the point here is the workflow's logic (fan-out, failure isolation, input
// validation), not the systems; the integration tests run the real checks.
type Checks = Pick<Activities, 'checkPostgres' | 'checkClickHouse' | 'checkKafka' | 'checkObjectStore'>;

function healthy(system: SystemName): SystemHealth {
  return { system, healthy: true, checkedAt: new Date().toISOString(), durationMs: 3, figures: { version: `${system}-v1` } };
}

function fakeChecks(overrides: Partial<Checks> = {}, calls: unknown[][] = []): Checks {
  const record = (system: SystemName) => async (timeoutSeconds?: number) => {
    calls.push([system, timeoutSeconds]);
    return healthy(system);
  };
  return {
    checkPostgres: record('postgres'),
    checkClickHouse: record('clickhouse'),
    checkKafka: record('kafka'),
    checkObjectStore: record('objectStore'),
    ...overrides,
  };
}

describe('healthCheck workflow', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await createTestEnvironment();
  });
  after(async () => {
    await env?.teardown();
  });

  async function run(input: object, activities: Checks) {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities,
    });
    return worker.runUntil(async () => {
      const handle = await env.client.workflow.start<typeof healthCheck>('healthCheck', {
        taskQueue,
        workflowId: `health-${randomUUID()}`,
        args: [input as HealthCheckInput],
      });
      const result = await handle.result();
      const status = await handle.query(healthCheckStatusQuery);
      return { result, status, handle };
    });
  }

  it('checks every system for {} and reports healthy', async () => {
    const calls: unknown[][] = [];
    const { result, status } = await run({}, fakeChecks({}, calls));
    assert.equal(result.healthy, true);
    assert.deepEqual(
      result.systems.map((s) => s.system),
      ['postgres', 'clickhouse', 'kafka', 'objectStore'],
    );
    assert.equal(calls.length, 4);
    assert.match(result.summary[0]!, /^postgres: healthy postgres-v1/);
    assert.equal(status.phase, 'done');
    assert.deepEqual(status.systems, { postgres: 'healthy', clickhouse: 'healthy', kafka: 'healthy', objectStore: 'healthy' });
  });

  it('keeps reporting the others when one check fails, and when one cannot run at all', async () => {
    const { result } = await run(
      {},
      fakeChecks({
        checkClickHouse: async () => ({ ...healthy('clickhouse'), healthy: false, figures: {}, error: 'connect ECONNREFUSED' }),
        checkKafka: async () => {
          throw new Error('worker lost its kafka client');
        },
      }),
    );
    assert.equal(result.healthy, false);
    const bySystem = Object.fromEntries(result.systems.map((s) => [s.system, s]));
    assert.equal(bySystem.postgres?.healthy, true);
    assert.equal(bySystem.objectStore?.healthy, true);
    assert.equal(bySystem.clickhouse?.error, 'connect ECONNREFUSED');
    assert.equal(bySystem.kafka?.healthy, false);
    assert.match(bySystem.kafka?.error ?? '', /the kafka check did not complete: worker lost its kafka client/);
    assert.ok(result.summary.includes('clickhouse: UNHEALTHY: connect ECONNREFUSED'));
  });

  it('checks only the systems asked for, with the timeout asked for', async () => {
    const calls: unknown[][] = [];
    const { result } = await run({ systems: ['kafka', 'postgres'], timeoutSeconds: 3 }, fakeChecks({}, calls));
    assert.deepEqual(
      result.systems.map((s) => s.system),
      ['kafka', 'postgres'],
    );
    assert.deepEqual(calls.sort(), [
      ['kafka', 3],
      ['postgres', 3],
    ]);
  });

  it('fails fast and non-retryably on bad input, naming the field', async () => {
    const calls: unknown[][] = [];
    await assert.rejects(run({ systems: ['postgres', 'redis'] }, fakeChecks({}, calls)), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /input\.systems\.1: /);
      assert.equal((err.cause as { nonRetryable?: boolean }).nonRetryable, true);
      return true;
    });
    await assert.rejects(run({ timeoutSecs: 3 }, fakeChecks({}, calls)), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.match(String(err.cause?.message), /timeoutSecs/);
      return true;
    });
    assert.equal(calls.length, 0, 'no check may run on bad input');
  });
});
