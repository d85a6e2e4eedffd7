import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createActivities } from '../../activities';
import { createTopicsAndWait } from '../../activities/kafka/topics';
import { createConnections } from '../../workers/connections';
import type { healthCheck } from '../../workflows/healthCheck';
import type { HealthCheckInput, HealthReport, SystemHealth } from '../../contracts/healthTypes';
import { startBroker, startService, stopBroker, stopService } from '../../localStack';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';

// The real stack: Temporal, Postgres, ClickHouse, three Kafka brokers and MinIO, started by
// scripts/stack. Each test leaves the stack as it found it.
const TOPIC = 'ballast-test-health';

describe('healthCheck on the real stack', () => {
  let stack: StackWorker;
  let activities: ReturnType<typeof createActivities>;

  before(async () => {
    stack = await startStackWorker();
    const { config, path } = stack.loaded;
    activities = createActivities({ config, connections: createConnections(config, path) });
    // A replicated topic of the test's own, so under-replication has something to show even on an
    // empty cluster.
    const admin = createConnections(config, path).kafka().admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(TOPIC)) {
        await createTopicsAndWait(admin, [{ topic: TOPIC, numPartitions: 6, replicationFactor: 3 }]);
      }
    } finally {
      await admin.disconnect();
    }
    await eventually('kafka healthy before the tests', async () => ((await activities.checkKafka()).healthy ? true : undefined));
  });

  after(async () => {
    await stack?.close();
  });

  function runHealthCheck(input: HealthCheckInput): Promise<HealthReport> {
    return stack.client.workflow.execute<typeof healthCheck>('healthCheck', {
      taskQueue: stack.taskQueue,
      workflowId: `test-health-${randomUUID()}`,
      args: [input],
    });
  }

  const bySystem = (report: HealthReport) =>
    Object.fromEntries(report.systems.map((s) => [s.system, s])) as Record<string, SystemHealth>;

  it('reports all four systems healthy, with their figures', async () => {
    const report = await runHealthCheck({});
    const systems = bySystem(report);
    assert.equal(report.healthy, true, report.summary.join('\n'));
    assert.match(String(systems.postgres!.figures.version), /^\d+\.\d+/);
    assert.deepEqual(systems.postgres!.figures.missingDatabases, []);
    assert.match(String(systems.clickhouse!.figures.version), /^\d+\.\d+/);
    assert.equal(systems.kafka!.figures.brokersOnline, 3);
    assert.equal(systems.kafka!.figures.underReplicatedPartitions, 0);
    assert.equal(systems.kafka!.figures.offlinePartitions, 0);
    assert.ok(Number(systems.kafka!.figures.partitions) >= 6);
    const { config } = stack.loaded;
    assert.equal(systems.objectStore!.figures.bucketsAvailable, new Set([...config.objectStore.buckets, config.objectStore.backupBucket]).size);
  });

  it('reports the missing broker and the under-replicated partitions while a broker is stopped', async () => {
    await stopBroker(2);
    try {
      // Brokers learn that broker 2 left in their own time: check once they all agree.
      const client = createConnections(stack.loaded.config, stack.loaded.path).kafka(5_000);
      let agreeing = 0;
      await eventually('every broker to see broker 2 gone', async () => {
        const admin = client.admin();
        await admin.connect();
        try {
          const ids = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
          agreeing = ids.includes(2) ? 0 : agreeing + 1;
          return agreeing >= 3 ? true : undefined;
        } finally {
          await admin.disconnect();
        }
      }, 60_000, 200);
      const report = await runHealthCheck({ systems: ['kafka'] });
      const kafka = bySystem(report).kafka!;
      assert.equal(report.healthy, false);
      assert.equal(kafka.healthy, false);
      assert.deepEqual(kafka.figures.missingBrokerIds, [2]);
      assert.equal(kafka.figures.brokersOnline, 2);
      assert.ok(Number(kafka.figures.underReplicatedPartitions) >= 6, `URP ${kafka.figures.underReplicatedPartitions}`);
      assert.equal(kafka.figures.offlinePartitions, 0, 'RF 3 with one broker down keeps every partition online');
      // The report lists at most 20 partitions by name; the count covers them all.
      assert.equal((kafka.figures.underReplicated as string[]).length, Math.min(20, Number(kafka.figures.underReplicatedPartitions)));
      assert.match(kafka.error ?? '', /broker\(s\) offline: 2; \d+ under-replicated partition\(s\)/);
    } finally {
      await startBroker(2);
      await eventually('kafka to recover after broker 2 restarts', async () => ((await activities.checkKafka()).healthy ? true : undefined));
    }
  });

  it('reports ClickHouse failed and still reports the other systems while ClickHouse is stopped', async () => {
    await stopService('clickhouse');
    try {
      const report = await runHealthCheck({});
      const systems = bySystem(report);
      assert.equal(report.healthy, false);
      assert.equal(systems.clickhouse!.healthy, false);
      assert.match(systems.clickhouse!.error ?? '', /ECONNREFUSED|connect|socket/i);
      assert.equal(systems.postgres!.healthy, true, systems.postgres!.error);
      assert.equal(systems.kafka!.healthy, true, systems.kafka!.error);
      assert.equal(systems.objectStore!.healthy, true, systems.objectStore!.error);
      assert.ok(report.summary.some((line) => line.startsWith('clickhouse: UNHEALTHY')));
    } finally {
      await startService('clickhouse');
    }
    assert.equal((await activities.checkClickHouse()).healthy, true);
  });
});
