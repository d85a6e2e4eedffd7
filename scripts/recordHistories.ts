/**
 * Records workflow histories for the replay tests (test/workflows/replay.test.ts), so a change to
 * workflow code that breaks determinism fails a test instead of stranding running workflows.
 * Run it again only when a workflow changes on purpose in a way old runs need not replay:
 *
 *   node --import tsx scripts/recordHistories.ts
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import type { healthCheck } from '../workflows/healthCheck';
import type { SystemName } from '../workflows/types';
import { createTestEnvironment, workflowBundle } from '../test/helpers/workflowEnv';

const historiesDir = path.resolve(__dirname, '../test/workflows/histories');

const check = (system: SystemName, healthy: boolean) => async () => ({
  system,
  healthy,
  checkedAt: '2026-11-22T02:00:00.000Z',
  durationMs: 5,
  figures: { version: 'recorded' },
  ...(healthy ? {} : { error: 'connect ECONNREFUSED' }),
});

async function main(): Promise<void> {
  const env = await createTestEnvironment();
  try {
    const taskQueue = `record-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: {
        checkPostgres: check('postgres', true),
        checkClickHouse: check('clickhouse', false),
        checkKafka: check('kafka', true),
        checkObjectStore: async () => {
          throw new Error('recorded activity failure');
        },
      },
    });
    const recordings: { name: string; input: object }[] = [
      { name: 'healthCheck-all', input: {} },
      { name: 'healthCheck-some', input: { systems: ['kafka', 'clickhouse'], timeoutSeconds: 3 } },
    ];
    await worker.runUntil(async () => {
      for (const { name, input } of recordings) {
        const handle = await env.client.workflow.start<typeof healthCheck>('healthCheck', {
          taskQueue,
          workflowId: name,
          args: [input],
        });
        await handle.result();
        const file = path.join(historiesDir, `${name}.json`);
        writeFileSync(file, `${historyToJSON(await handle.fetchHistory())}\n`);
        console.log(`recorded ${file}`);
      }
    });
  } finally {
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
