/**
 * demoReset, forced, reseeded empty, against the raw script (demoResetRaw.ts) doing the same wipe
 * of the same targets. Both run on a demo platform of the bench's own, filled like the seeded
 * stack before every run (the seed's Postgres tables, ClickHouse events and bucket objects, two
 * topics of 3,000 and 1,500 messages with a consumer group), so the stack's seeded data is never
 * wiped.
 */
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { writeDemoMarkers } from '../../activities/demoReset/activities';
import pg from 'pg';
import { rows } from '../../activities/clickhouse/tableInfo';
import type { DemoResetReport } from '../../contracts/demoResetTypes';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { spawnWorker } from '../../localStack/workerProcess';
import type { LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { seedClickHouse, seedKafka, seedObjectStore, seedPostgres, SEED } from '../seed';
import { rawDemoReset, type RawResetTargets } from './demoResetRaw';
import { timed } from './run';
import { LIMITS, atMost, fmtRatio, fmtSeconds, ratio, type Verdict } from './targets';

const DATABASE = 'bench_demo';
const BUCKET = 'bench-demo-data';
const TOPICS = SEED.topics.map((t) => ({ ...t, topic: `bench-demo-${t.topic}` }));
const GROUP = 'bench-demo-billing';

/** The bench's demo platform as a config: only its own databases, topics and bucket. */
export function demoBenchConfig(): LoadedConfig {
  return writeDerivedConfig('bench-reset', (raw) => {
    raw.environment = 'demo';
    raw.temporal = { ...raw.temporal, taskQueue: 'ballast-bench-reset' };
    raw.postgres.databases = [DATABASE];
    raw.clickhouse.databases = [{ name: DATABASE, tables: [] }];
    raw.objectStore = { ...raw.objectStore, buckets: [BUCKET] };
    raw.backup = { ...raw.backup, kafkaDataTopics: [], schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: 'ballast-bench-reset-schedule' } };
    raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: 'ballast-bench-reset-drill' } };
    raw.demoReset = { ...raw.demoReset, kafkaTopics: TOPICS.map((t) => t.topic), schedule: undefined };
  });
}

/** Fills the demo platform as the seed fills the stack, and marks every system as a demo. */
async function fillDemo(loaded: LoadedConfig): Promise<void> {
  const { config } = loaded;
  const connections = createConnections(config, loaded.path);
  const ch = connections.clickhouse();
  const s3 = connections.s3();
  try {
    await ch.command({ query: `CREATE DATABASE IF NOT EXISTS ${DATABASE}` });
    await s3.send(new HeadBucketCommand({ Bucket: BUCKET })).catch(() => s3.send(new CreateBucketCommand({ Bucket: BUCKET })));
  } finally {
    await ch.close();
    s3.destroy();
  }
  await Promise.all([seedPostgres(config, connections), seedClickHouse(config, connections), seedObjectStore(config, connections), seedKafka(connections, TOPICS, GROUP)]);
  await writeDemoMarkers({ config, connections });
}

/** What the raw script wipes: the demo's tables (not the demo markers), its topics and bucket. */
async function demoTargets(loaded: LoadedConfig): Promise<RawResetTargets> {
  const connections = createConnections(loaded.config, loaded.path);
  const client = new pg.Client(connections.postgres(DATABASE));
  const ch = connections.clickhouse();
  await client.connect();
  try {
    const { rows: pgTables } = await client.query<{ name: string }>(
      "SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> '__ballast_demo' ORDER BY 1",
    );
    const chTables = await rows<{ name: string }>(ch, `SELECT name FROM system.tables WHERE database = '${DATABASE}' AND name <> '__ballast_demo' AND engine LIKE '%MergeTree' ORDER BY name`);
    return {
      topics: TOPICS.map((t) => t.topic),
      postgres: [{ database: DATABASE, tables: pgTables.map((t) => t.name) }],
      clickhouse: [{ database: DATABASE, tables: chTables.map((t) => t.name) }],
      buckets: [BUCKET],
    };
  } finally {
    await client.end();
    await ch.close();
  }
}

export async function benchDemoReset(client: Client, repeats: number, say: (line: string) => void): Promise<Verdict> {
  console.log('\n[reset] demo reset of a demo platform filled like the seeded stack ...');
  const loaded = demoBenchConfig();
  const worker = await spawnWorker(loaded.path);
  const start = (input: object) =>
    client.workflow.execute('demoReset', { taskQueue: loaded.config.temporal.taskQueue, workflowId: `bench-reset-${Date.now()}`, args: [input] });
  try {
    const runs: { ms: number; report: DemoResetReport }[] = [];
    const raws: number[] = [];
    for (let i = 0; i < repeats; i++) {
      await fillDemo(loaded);
      const r = await timed(() => start({ force: true, reseed: 'empty' }) as Promise<DemoResetReport>);
      if (!r.value.verified) throw new Error(`the benchmark reset did not verify: ${r.value.verification.join('; ')}`);
      runs.push({ ms: r.ms, report: r.value });
      await fillDemo(loaded);
      raws.push(await rawDemoReset(loaded, await demoTargets(loaded)));
    }
    const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const bestRaw = Math.min(...raws);
    const phases = Object.entries(best.report.phaseDurationsMs).map(([phase, ms]) => `${phase} ${fmtSeconds(ms)}`);
    say(`[reset] raw script (kafka get-offsets + delete-records, psql TRUNCATE, clickhouse-client TRUNCATE, every object version deleted): ${fmtSeconds(bestRaw)}   demoReset (forced, reseed empty, wall): ${fmtSeconds(best.ms)}   ratio ${fmtRatio(ratio(best.ms, bestRaw))}`);
    say(`[reset]   every run: demoReset ${runs.map((r) => fmtSeconds(r.ms)).join(', ')}; raw ${raws.map(fmtSeconds).join(', ')}; the best run's phases: ${phases.join(', ')}`);
    await fillDemo(loaded);
    return atMost('demoReset vs raw reset script', ratio(best.ms, bestRaw), LIMITS.demoResetRatio, fmtRatio);
  } finally {
    await worker.stop();
  }
}
