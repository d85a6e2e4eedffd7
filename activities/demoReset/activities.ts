import { ApplicationFailure } from '@temporalio/activity';
import pg from 'pg';
import type { Admin } from 'kafkajs';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { COMPONENTS, type Component } from '../../contracts/backupTypes';
import type {
  DemoFigures,
  DemoResetPlan,
  DemoResetReport,
  DemoResetSettings,
  KafkaGroupFigures,
  KafkaTopicFigures,
  MarkerCheck,
  Reseed,
  ReseedField,
} from '../../contracts/demoResetTypes';
import type { PlannedTaskRequest, RestoreTaskHandle, VerifyResult } from '../../contracts/restoreTypes';
import { Failure } from '../../contracts/failures';
import { approvalPolicy, planHash } from '../approval/approvals';
import { heartbeat } from '../common/heartbeat';
import type { ActivityDeps } from '../deps';
import { putJson } from '../storage/backupObjects';
import * as chDemo from '../clickhouse/demoReset';
import * as kafkaDemo from '../kafka/demoReset';
import * as s3Demo from '../objectStore/demoReset';
import * as pgDemo from '../postgres/demoReset';
import { planActions } from '../../contracts/demoResetRows';
import { dropWipedCopies, goldenObjectChecks, planGoldenReseed } from './golden';

/**
 * demoReset's side effects. Every destructive activity checks the guard again itself, right
 * before it acts (environment demo, and its target's marker present): a marker removed or a config
 * changed after the plan stops the reset there, whatever `force` said.
 */
export function createDemoResetActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const settings = config.demoReset;

  async function withPostgres<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client(connections.postgres(database));
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  async function withClickHouse<T>(fn: (ch: ClickHouseClient) => Promise<T>): Promise<T> {
    const ch = connections.clickhouse(300_000);
    try {
      return await fn(ch);
    } finally {
      await ch.close();
    }
  }
  async function withKafka<T>(fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
  async function withS3<T>(fn: (s3: S3Client) => Promise<T>): Promise<T> {
    const s3 = connections.s3(300_000);
    try {
      return await fn(s3);
    } finally {
      s3.destroy();
    }
  }

  const markerTarget = {
    postgres: (db: string) => `postgres database ${db}`,
    clickhouse: (db: string) => `clickhouse database ${db}`,
    kafka: () => `kafka cluster (marker topic ${settings.kafkaMarkerTopic})`,
    objectStore: (bucket: string) => `bucket ${bucket}`,
  };

  /** Whether each target of the components carries its demo marker. */
  async function checkMarkers(components: Component[]): Promise<MarkerCheck[]> {
    const checks: MarkerCheck[] = [];
    if (components.includes('postgres')) {
      for (const db of config.postgres.databases) {
        checks.push({ component: 'postgres', target: markerTarget.postgres(db), present: await withPostgres(db, pgDemo.hasDemoMarker) });
      }
    }
    if (components.includes('clickhouse')) {
      await withClickHouse(async (ch) => {
        for (const { name } of config.clickhouse.databases) {
          checks.push({ component: 'clickhouse', target: markerTarget.clickhouse(name), present: await chDemo.hasDemoMarker(ch, name) });
        }
      });
    }
    if (components.includes('kafka')) {
      checks.push({ component: 'kafka', target: markerTarget.kafka(), present: await withKafka((admin) => kafkaDemo.hasDemoMarker(admin, settings.kafkaMarkerTopic)) });
    }
    if (components.includes('objectStore')) {
      await withS3(async (s3) => {
        for (const bucket of config.objectStore.buckets) {
          checks.push({ component: 'objectStore', target: markerTarget.objectStore(bucket), present: await s3Demo.hasDemoMarker(s3, bucket) });
        }
      });
    }
    return checks;
  }

  /** The guard's first half: the config says demo. Nothing overrides it. */
  function refuseUnlessDemo(what: string): void {
    if (config.environment !== 'demo') {
      throw ApplicationFailure.nonRetryable(
        `demo reset refused (${what}): the config's environment is ${config.environment}, not demo; a demo reset runs only against a config labelled demo, whatever force says`,
        Failure.DemoGuardRefused,
      );
    }
  }

  /** The guard's second half: the target carries the marker. Checked by every destructive step right before it acts. */
  function refuseUnmarked(checks: MarkerCheck[], what: string): void {
    const missing = checks.filter((c) => !c.present).map((c) => c.target);
    if (missing.length > 0) {
      throw ApplicationFailure.nonRetryable(
        `demo reset refused (${what}): no demo marker on ${missing.join(', ')}; write the markers with the demo-marker command (scripts/markDemo.ts) only on a platform that is a demo; force does not skip this`,
        Failure.DemoGuardRefused,
        { missing },
      );
    }
  }

  async function figures(components: Component[]): Promise<DemoFigures> {
    const found: DemoFigures = {};
    if (components.includes('kafka')) {
      found.kafka = await withKafka(async (admin) => kafkaDemo.kafkaFigures(admin, await kafkaDemo.demoTopics(admin, settings.kafkaTopics, settings.kafkaMarkerTopic)));
    }
    if (components.includes('postgres')) {
      found.postgres = [];
      for (const database of config.postgres.databases) found.postgres.push({ database, tables: await withPostgres(database, pgDemo.demoTableFigures) });
    }
    if (components.includes('clickhouse')) {
      found.clickhouse = await withClickHouse(async (ch) => {
        const dbs = [];
        for (const { name, tables } of config.clickhouse.databases) dbs.push({ database: name, tables: await chDemo.demoTableFigures(ch, name, tables) });
        return dbs;
      });
    }
    if (components.includes('objectStore')) {
      found.objectStore = await withS3(async (s3) => {
        const buckets = [];
        for (const bucket of config.objectStore.buckets) buckets.push(await s3Demo.bucketFigures(s3, bucket));
        return buckets;
      });
    }
    return found;
  }

  return {
    async demoResetSettings(): Promise<DemoResetSettings> {
      const policy = approvalPolicy(config);
      return {
        environment: config.environment,
        components: settings.components,
        keep: settings.keep,
        goldenBackupId: settings.goldenBackupId,
        confirmation: { ...policy, timeoutMinutes: settings.confirmationTimeoutMinutes, reminderAfterMinutes: Math.min(policy.reminderAfterMinutes, settings.confirmationTimeoutMinutes) },
      };
    },

    /**
     * The plan, which is also the dry run: the guard (environment demo, every target's marker),
     * then the real figures of every target. Read-only. A guard that fails refuses here, naming
     * each system, before anyone is asked.
     */
    async planDemoReset({ keep, reseed, reseedField = 'input.reseed.backup' }: { keep: Component[]; reseed: Reseed; reseedField?: ReseedField }): Promise<DemoResetPlan> {
      refuseUnless(keep.every((k) => (COMPONENTS as readonly string[]).includes(k)), 'input.keep names an unknown component');
      refuseUnlessDemo('at plan');
      const components = settings.components.filter((c) => !keep.includes(c));
      const kept = COMPONENTS.filter((c) => !components.includes(c));
      const markers = await checkMarkers(components);
      refuseUnmarked(markers, 'at plan');
      const found = await figures(components);
      // Kept components are not reseeded: with nothing wiped, no golden backup is needed.
      const golden = reseed !== 'empty' && components.length > 0 ? await planGoldenReseed(deps, { backupId: reseed.backup, field: reseedField, components, figures: found }) : undefined;
      const body = { environment: config.environment, components, kept, markers, figures: found, reseed, ...(golden ? { golden } : {}) };
      // The stored restore plan's key and bytes are this run's own; the hash covers what the reseed
      // loads (backup, signing key, steps, figures), so the same state and backup give the same hash.
      const hash = planHash({ ...body, ...(golden ? { golden: { ...golden, plan: undefined } } : {}) });
      return { ...body, hash, actions: planActions(body) };
    },

    /** The guard again, right before a reseed step loads data into `components`. */
    async checkDemoGuard({ components, what }: { components: Component[]; what: string }): Promise<void> {
      refuseUnlessDemo(what);
      refuseUnmarked(await checkMarkers(components), what);
    },

    /** After the reseed: drops the wiped copies the restore steps kept aside (see golden.ts). */
    async dropWipedDemoCopies({ restoreId, tasks }: { restoreId: string; tasks: RestoreTaskHandle[] }): Promise<string[]> {
      refuseUnlessDemo('before dropping the wiped copies the reseed replaced');
      return dropWipedCopies(deps, { restoreId, tasks });
    },

    /** A reseeded bucket's objects against the golden backup's copies: key, size, sha256. */
    async verifyGoldenObjects(req: PlannedTaskRequest): Promise<VerifyResult> {
      return goldenObjectChecks(deps, req);
    },

    /** The figures again, for the verification and the report's "after" column. */
    async demoResetFigures({ components }: { components: Component[] }): Promise<DemoFigures> {
      return figures(components);
    },

    /** Purges one topic to its high watermark (see kafka/demoReset.ts for compacted topics). */
    async purgeDemoTopic({ topic }: { topic: KafkaTopicFigures }): Promise<{ deleted: number }> {
      refuseUnlessDemo(`before purging topic ${topic.topic}`);
      refuseUnmarked(await checkMarkers(['kafka']), `before purging topic ${topic.topic}`);
      return withKafka(async (admin) => ({ deleted: await kafkaDemo.purgeTopic(admin, topic.topic, topic.cleanupPolicy) }));
    },

    async resetDemoGroups({ groups }: { groups: KafkaGroupFigures[] }): Promise<{ moved: number }> {
      refuseUnlessDemo('before resetting consumer groups');
      refuseUnmarked(await checkMarkers(['kafka']), 'before resetting consumer groups');
      return withKafka(async (admin) => ({ moved: await kafkaDemo.resetGroups(admin, groups) }));
    },

    async truncateDemoPostgres({ database, tables }: { database: string; tables: string[] }): Promise<void> {
      refuseUnlessDemo(`before truncating postgres ${database}`);
      await withPostgres(database, async (client) => {
        refuseUnmarked([{ component: 'postgres', target: markerTarget.postgres(database), present: await pgDemo.hasDemoMarker(client) }], `before truncating postgres ${database}`);
        await pgDemo.truncateDemoTables(client, tables, settings.lockTimeoutSeconds * 1000);
      });
    },

    async truncateDemoClickHouse({ database, tables }: { database: string; tables: string[] }): Promise<void> {
      refuseUnlessDemo(`before truncating clickhouse ${database}`);
      await withClickHouse(async (ch) => {
        refuseUnmarked([{ component: 'clickhouse', target: markerTarget.clickhouse(database), present: await chDemo.hasDemoMarker(ch, database) }], `before truncating clickhouse ${database}`);
        for (const [i, table] of tables.entries()) {
          await chDemo.truncateDemoTable(ch, database, table);
          heartbeat({ truncated: i + 1, of: tables.length });
        }
      });
    },

    async emptyDemoBucket({ bucket }: { bucket: string }): Promise<{ deleted: number }> {
      refuseUnlessDemo(`before emptying bucket ${bucket}`);
      return withS3(async (s3) => {
        refuseUnmarked([{ component: 'objectStore', target: markerTarget.objectStore(bucket), present: await s3Demo.hasDemoMarker(s3, bucket) }], `before emptying bucket ${bucket}`);
        return { deleted: await s3Demo.emptyBucket(s3, bucket, (deleted) => heartbeat({ deleted })) };
      });
    },

    /** Kept in the backup bucket with the other runs' reports. */
    async writeDemoResetReport(report: DemoResetReport): Promise<string> {
      await withS3((s3) => putJson(s3, config.objectStore.backupBucket, report.reportKey, report));
      return report.reportKey;
    },
  };
}

function refuseUnless(ok: boolean, message: string): void {
  if (!ok) throw ApplicationFailure.nonRetryable(message, Failure.InvalidInput);
}

/**
 * The demo-marker command's work (scripts/markDemo.ts, and the seed on the local stack): writes
 * the marker into every system the config's demoReset acts on. Refused unless the config is
 * labelled demo: marking is the deliberate act that makes a platform wipeable.
 */
export async function writeDemoMarkers(deps: ActivityDeps, log: (line: string) => void = () => undefined): Promise<void> {
  const { config, connections } = deps;
  if (config.environment !== 'demo') throw new Error(`refusing to write demo markers: the config's environment is ${config.environment}, not demo`);
  const components = config.demoReset.components;
  if (components.includes('postgres')) {
    for (const db of config.postgres.databases) {
      const client = new pg.Client(connections.postgres(db));
      await client.connect();
      try {
        await pgDemo.markDemoDatabase(client);
      } finally {
        await client.end();
      }
      log(`postgres database ${db}: marked demo`);
    }
  }
  if (components.includes('clickhouse')) {
    const ch = connections.clickhouse();
    try {
      for (const { name } of config.clickhouse.databases) {
        await chDemo.markDemoDatabase(ch, name);
        log(`clickhouse database ${name}: marked demo`);
      }
    } finally {
      await ch.close();
    }
  }
  if (components.includes('kafka')) {
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      await kafkaDemo.markDemoCluster(admin, config.demoReset.kafkaMarkerTopic, Math.min(3, config.kafka.brokers.length));
    } finally {
      await admin.disconnect();
    }
    log(`kafka: marker topic ${config.demoReset.kafkaMarkerTopic}`);
  }
  if (components.includes('objectStore')) {
    const s3 = connections.s3();
    try {
      for (const bucket of config.objectStore.buckets) {
        await s3Demo.markDemoBucket(s3, bucket);
        log(`bucket ${bucket}: tagged ${s3Demo.DEMO_TAG.Key}=${s3Demo.DEMO_TAG.Value}`);
      }
    } finally {
      s3.destroy();
    }
  }
}
