import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Context } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { LIVENESS_EVERY_MS, heartbeat, whileAlive } from '../../activities/common/heartbeat';
import { livenessHeartbeats } from '../../workers/worker';

/** Every heartbeat the activity environment saw, in order. */
function recording(env: MockActivityEnvironment): unknown[] {
  const seen: unknown[] = [];
  env.on('heartbeat', (details: unknown) => seen.push(details));
  return seen;
}

describe('liveness heartbeats', () => {
  it('re-send the details the previous attempt left until the activity sends its own, then the latest of its own', async () => {
    const env = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { partitionsDone: 7 } });
    const seen = recording(env);
    const result = await env.run(async () =>
      whileAlive(
        Context.current(),
        async () => {
          await sleep(60);
          heartbeat({ partitionsDone: 8 });
          await sleep(60);
          return 'done';
        },
        10,
      ),
    );
    assert.equal(result, 'done');
    const own = seen.findIndex((d) => (d as { partitionsDone: number }).partitionsDone === 8);
    assert.ok(own > 0, `a liveness beat went out before the activity's own: ${JSON.stringify(seen)}`);
    assert.ok(seen.slice(0, own).every((d) => (d as { partitionsDone: number }).partitionsDone === 7), 'before: the previous attempt\'s details, never nothing');
    assert.ok(seen.length > own + 1, 'liveness beats went on after the activity\'s own');
    assert.ok(seen.slice(own).every((d) => (d as { partitionsDone: number }).partitionsDone === 8), 'after: the activity\'s latest details');
  });

  it('stop when the activity ends, whether it returns or throws', async () => {
    // The failure is the point here: the SDK's warning about it would only clutter the output.
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    const seen = recording(env);
    await assert.rejects(
      env.run(async () => whileAlive(Context.current(), async () => { await sleep(30); throw new Error('step failed'); }, 10)),
      /step failed/,
    );
    const count = seen.length;
    await sleep(50);
    assert.equal(seen.length, count, 'no heartbeat after the activity ended');
  });

  it('are sent for every activity by the worker\'s interceptor, even one that never heartbeats itself', async () => {
    const env = new MockActivityEnvironment({}, { interceptors: [livenessHeartbeats] });
    const seen = recording(env);
    await env.run(async () => sleep(LIVENESS_EVERY_MS + 500));
    assert.ok(seen.length >= 1, 'the silent activity was heartbeated for');
  });

  it('come at least three times per heartbeat timeout when that timeout is shorter than the usual interval', async () => {
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 300 }, { interceptors: [livenessHeartbeats] });
    const seen = recording(env);
    await env.run(async () => sleep(700));
    assert.ok(seen.length >= 4, `${seen.length} beats in 700 ms with a 300 ms heartbeat timeout`);
  });
});
