import { strict as assert } from 'node:assert';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { markerKey } from '../../activities/storage/backupObjects';
import { partitionExpression } from '../../activities/clickhouse/sql';
import {
  createClickHouseBackupActivities,
  type ClickHouseBackupProgress,
  type ClickHouseBackupRequest,
} from '../../activities/clickhouse/backup';
import { readSecret, type Config } from '../../workers/config';
import type { SystemHealth } from '../../contracts/healthTypes';
import { createClickHouseActivities } from '../../activities/clickhouse/health';
import { createConnections } from '../../workers/connections';
import { assertServerVersion, clickhouseServers } from '../helpers/clickhouseServers';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';

// Real ClickHouse (the stack's 18.16) and real MinIO. Everything here is the test's own: a scratch
// database with randomly named tables, and backup ids nobody else uses; all removed afterwards.
const DATABASE = 'ballast_test_chbackup';
const suffix = randomUUID().replace(/-/g, '').slice(0, 12);
const EVENTS = `events_${suffix}`; // MergeTree by month, several parts per partition
const FLAT = `flat_${suffix}`; // MergeTree without PARTITION BY
const REGIONS = `regions_${suffix}`; // composite partition key with awkward string values
const MEMO = `memo_${suffix}`; // Memory: schema only
const BIG = `big_${suffix}`; // one large partition, to cancel mid-export
const VIEW = `view_${suffix}`; // View: schema only
const LEGACY = `legacy_${suffix}`; // the deprecated MergeTree(date, key, granularity) syntax (18.x only)
const COPIES: string[] = [];

async function eventually(what: string, check: () => Promise<true | undefined>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

for (const server of clickhouseServers()) describe(`backupClickHouseTable on ClickHouse ${server.version} (real stack)`, () => {
  let config: Config;
  let configFile: string;
  let ch: ClickHouseClient;
  let s3: S3Client;
  let activities: ReturnType<typeof createClickHouseBackupActivities>;
  const backupIds: string[] = [];
  const newBackupId = () => {
    const id = `test-chbackup-${randomUUID()}`;
    backupIds.push(id);
    return id;
  };

  const sql = async (query: string) => ch.command({ query });
  const select = async <T>(query: string) => (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
  const q = (table: string) => `${DATABASE}.${table}`;

  /** Runs the activity the way a worker would, recording its heartbeats. */
  async function run(
    request: ClickHouseBackupRequest,
    options: { heartbeatDetails?: unknown; onHeartbeat?: (d: ClickHouseBackupProgress, env: MockActivityEnvironment) => void } = {},
  ): Promise<{ result: ComponentResult; heartbeats: ClickHouseBackupProgress[] }> {
    const env = new MockActivityEnvironment(options.heartbeatDetails === undefined ? {} : { heartbeatDetails: options.heartbeatDetails });
    const heartbeats: ClickHouseBackupProgress[] = [];
    env.on('heartbeat', (d: ClickHouseBackupProgress) => {
      heartbeats.push(d);
      options.onHeartbeat?.(d, env);
    });
    const result: ComponentResult = await env.run<[ClickHouseBackupRequest], ComponentResult, typeof activities.backupClickHouseTable>(
      activities.backupClickHouseTable,
      request,
    );
    return { result, heartbeats };
  }

  async function download(key: string): Promise<Buffer> {
    const object = await s3.send(new GetObjectCommand({ Bucket: config.objectStore.backupBucket, Key: key }));
    return Buffer.from(await object.Body!.transformToByteArray());
  }
  async function lastModified(key: string): Promise<number> {
    const head = await s3.send(new HeadObjectCommand({ Bucket: config.objectStore.backupBucket, Key: key }));
    return head.LastModified!.getTime();
  }
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  /** Every object exists with the piece's size, and its bytes hash to the piece's sha256. */
  async function assertStored(pieces: BackupPiece[]) {
    for (const piece of pieces) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: config.objectStore.backupBucket, Key: piece.key }));
      assert.equal(head.ContentLength, piece.size, `${piece.name}: size`);
      assert.equal(sha256(await download(piece.key)), piece.sha256, `${piece.name}: sha256`);
    }
  }

  /**
   * The restore a person would do by hand: the saved CREATE TABLE under another name, then each
   * partition object POSTed as-is to ClickHouse's HTTP interface with
   * `?query=INSERT INTO db.copy FORMAT Native&decompress=1`.
   */
  async function restoreInto(copy: string, pieces: BackupPiece[]) {
    const schema = pieces.find((p) => p.name.endsWith('/schema'))!;
    const statement = (await download(schema.key)).toString('utf8');
    const renamed = statement.replace(/^CREATE TABLE \S+/, `CREATE TABLE ${q(copy)}`);
    assert.notEqual(renamed, statement, 'schema starts with CREATE TABLE <name>');
    COPIES.push(copy);
    await ch.command({ query: renamed, clickhouse_settings: server.version === '18.16' ? {} : { allow_deprecated_syntax_for_merge_tree: 1 } });
    const url = new URL(config.clickhouse.url);
    const password = config.clickhouse.password ? readSecret(config.clickhouse.password, configFile) : '';
    for (const piece of pieces.filter((p) => p !== schema)) {
      assert.equal(piece.details?.format, 'Native');
      assert.equal(piece.details?.compression, 'clickhouse-http-compress');
      url.search = new URLSearchParams({ query: `INSERT INTO ${q(copy)} FORMAT Native`, decompress: '1' }).toString();
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'X-ClickHouse-User': config.clickhouse.user, 'X-ClickHouse-Key': password },
        body: await download(piece.key),
      });
      assert.equal(response.status, 200, `${piece.name}: ${await response.text()}`);
    }
  }

  const byMonth = async (table: string) =>
    Object.fromEntries(
      (await select<{ p: string; n: string; h: string }>(
        `SELECT toString(toYYYYMM(d)) AS p, count() AS n, toString(sum(cityHash64(d, id, s, v))) AS h FROM ${q(table)} GROUP BY p ORDER BY p`,
      )).map((r) => [r.p, { rows: Number(r.n), hash: r.h }]),
    );

  before(async () => {
    const loaded = server.load();
    config = loaded.config;
    configFile = loaded.path;
    const connections = createConnections(config, configFile);
    ch = connections.clickhouse();
    await assertServerVersion(ch, server);
    s3 = connections.s3();
    activities = createClickHouseBackupActivities({ config, connections });

    await sql(`CREATE DATABASE IF NOT EXISTS ${DATABASE}`);
    await sql(`CREATE TABLE ${q(EVENTS)} (d Date, id UInt64, s String, v Float64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id`);
    // Several parts per partition: one per INSERT and month, kept apart by stopping merges.
    await sql(`SYSTEM STOP MERGES ${q(EVENTS)}`);
    for (let batch = 0; batch < 3; batch++) {
      await sql(
        `INSERT INTO ${q(EVENTS)} SELECT toDate('2026-01-01') + (number % 90) AS d, number + ${batch * 1_000_000} AS id,
           concat('row ''', toString(number), '''\\n', arrayStringConcat(arrayMap(x -> 'x', range(number % 50)))) AS s, number / 7 AS v
         FROM system.numbers LIMIT ${40_000 + batch * 1_111}`,
      );
    }
    await sql(`CREATE TABLE ${q(FLAT)} (d Date, id UInt64, s String, v Float64) ENGINE = MergeTree ORDER BY id`);
    await sql(`INSERT INTO ${q(FLAT)} SELECT toDate('2025-06-01') + number % 400, number, toString(number), number * 1.5 FROM system.numbers LIMIT 5000`);
    await sql(`INSERT INTO ${q(FLAT)} SELECT toDate('2025-06-01'), number + 10000, 'second', 0 FROM system.numbers LIMIT 10`);
    await sql(
      `CREATE TABLE ${q(REGIONS)} (d Date, region String, id UInt64) ENGINE = MergeTree PARTITION BY (toYYYYMM(d), region) ORDER BY id`,
    );
    await sql(
      `INSERT INTO ${q(REGIONS)} SELECT toDate('2026-03-01') + number % 40, arrayElement(['eu', 'o\\'brien', 'a\\\\b', 'us west'], number % 4 + 1), number FROM system.numbers LIMIT 4000`,
    );
    await sql(`CREATE TABLE ${q(MEMO)} (id UInt64) ENGINE = Memory`);
    await sql(`INSERT INTO ${q(MEMO)} VALUES (1), (2)`);
    await sql(`CREATE VIEW ${q(VIEW)} AS SELECT id FROM ${q(MEMO)}`);
  });

  after(async () => {
    for (const table of [VIEW, LEGACY, EVENTS, FLAT, REGIONS, MEMO, BIG, ...COPIES]) {
      await sql(`DROP TABLE IF EXISTS ${q(table)}`).catch(() => undefined);
    }
    const left = await select<{ n: string }>(`SELECT count() AS n FROM system.tables WHERE database = '${DATABASE}'`).catch(() => []);
    if (Number(left[0]?.n ?? 1) === 0) await sql(`DROP DATABASE IF EXISTS ${DATABASE}`).catch(() => undefined);
    const Bucket = config.objectStore.backupBucket;
    for (const backupId of backupIds) {
      const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `backups/${backupId}/` }));
      const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys } }));
    }
    await ch?.close();
    s3?.destroy();
  });

  let eventsBackupId: string;
  let eventsResult: ComponentResult;

  it('the health check reports the server and its version', async () => {
    const health: SystemHealth = await new MockActivityEnvironment().run(
      createClickHouseActivities({ config, connections: createConnections(config, configFile) }).checkClickHouse,
      5,
      { allowMissingDatabases: true },
    );
    assert.equal(health.healthy, true, health.error);
    assert.ok(String(health.figures.version).startsWith(`${server.version}.`), `version ${String(health.figures.version)}`);
  });

  it('writes the schema and one verified object per partition of a partitioned table', async () => {
    const parts = await select<{ partition_id: string; parts: string }>(
      `SELECT partition_id, count() AS parts FROM system.parts WHERE database = '${DATABASE}' AND table = '${EVENTS}' AND active GROUP BY partition_id`,
    );
    assert.deepEqual(parts.map((p) => p.partition_id).sort(), ['202601', '202602', '202603']);
    assert.ok(parts.every((p) => Number(p.parts) >= 3), `several parts per partition: ${JSON.stringify(parts)}`);

    eventsBackupId = newBackupId();
    const { result, heartbeats } = await run({ backupId: eventsBackupId, database: DATABASE, table: EVENTS });
    eventsResult = result;
    assert.equal(result.component, 'clickhouse');
    assert.equal(result.resumed, false);
    assert.deepEqual(
      result.pieces.map((p) => p.name),
      [`${DATABASE}.${EVENTS}/schema`, ...['202601', '202602', '202603'].map((id) => `${DATABASE}.${EVENTS}/${id}`)],
    );
    await assertStored(result.pieces);

    const [schema, ...data] = result.pieces;
    const [show] = await select<{ statement: string }>(`SHOW CREATE TABLE ${q(EVENTS)}`);
    assert.equal((await download(schema!.key)).toString('utf8'), show!.statement);
    assert.equal(schema!.key, `backups/${eventsBackupId}/clickhouse/${DATABASE}/${EVENTS}/schema.sql`);
    assert.equal(schema!.details?.engine, 'MergeTree');
    assert.equal(schema!.details?.partitionKey, 'toYYYYMM(d)');

    const source = await byMonth(EVENTS);
    for (const piece of data) {
      const id = piece.details!.partitionId as string;
      assert.equal(piece.key, `backups/${eventsBackupId}/clickhouse/${DATABASE}/${EVENTS}/${id}.native`);
      assert.equal(piece.details!.partition, id);
      assert.equal(piece.rows, source[id]!.rows, `rows of ${id}`);
      assert.equal(piece.details!.rowsVerified, true);
      // Each month holds over 1 MiB of Native: ClickHouse compresses it itself (compress=1).
      assert.equal(piece.details!.framedBy, 'server');
      assert.deepEqual(piece.details!.compressionMethods, [server.compression]);
      assert.ok(piece.size > 0 && piece.size < (piece.details!.uncompressedBytes as number));
      assert.ok(piece.durationMs >= 0 && piece.startedAt <= piece.snapshotAt && piece.snapshotAt <= piece.finishedAt);
    }
    const last = heartbeats.at(-1)!;
    assert.equal(last.partitionsDone, 3);
    assert.equal(last.bytes, data.reduce((sum, p) => sum + p.size, 0));
  });

  it('finds its complete pieces on a second call and rewrites nothing', async () => {
    const before = await Promise.all(eventsResult.pieces.map((p) => lastModified(p.key)));
    const markersBefore = await Promise.all(eventsResult.pieces.map((p) => lastModified(markerKey(p.key))));
    await new Promise((r) => setTimeout(r, 1100)); // LastModified has one-second resolution
    const { result } = await run({ backupId: eventsBackupId, database: DATABASE, table: EVENTS });
    assert.equal(result.resumed, true);
    assert.deepEqual(result.pieces, eventsResult.pieces);
    assert.deepEqual(await Promise.all(result.pieces.map((p) => lastModified(p.key))), before);
    assert.deepEqual(await Promise.all(result.pieces.map((p) => lastModified(markerKey(p.key)))), markersBefore);
  });

  it('loads back: the saved schema plus each partition INSERTed over HTTP gives the same data', async () => {
    const copy = `${EVENTS}_copy`;
    await restoreInto(copy, eventsResult.pieces);
    assert.deepEqual(await byMonth(copy), await byMonth(EVENTS));
  });

  it('resumes a retried attempt: keeps finished partitions, redoes the unfinished one', async () => {
    const backupId = newBackupId();
    const first = await run({ backupId, database: DATABASE, table: EVENTS });
    // As if the attempt died after uploading 202602 but before marking it complete.
    const redo = first.result.pieces.find((p) => p.details?.partitionId === '202602')!;
    await s3.send(new DeleteObjectCommand({ Bucket: config.objectStore.backupBucket, Key: markerKey(redo.key) }));
    const kept = first.result.pieces.filter((p) => p !== redo);
    const keptModified = await Promise.all(kept.map((p) => lastModified(p.key)));
    const died = first.heartbeats.find((h) => h.partitionsDone === 1)!;

    const retry = await run({ backupId, database: DATABASE, table: EVENTS }, { heartbeatDetails: died });
    assert.equal(retry.result.resumed, true);
    assert.deepEqual(await Promise.all(kept.map((p) => lastModified(p.key))), keptModified);
    const redone = retry.result.pieces.find((p) => p.details?.partitionId === '202602')!;
    assert.notEqual(redone.finishedAt, redo.finishedAt, 'the unfinished partition was exported again');
    assert.equal(redone.rows, redo.rows);
    await assertStored(retry.result.pieces);
    assert.equal(retry.heartbeats.at(-1)!.partitionsDone, 3);
  });

  it('exports an unpartitioned table in one piece', async () => {
    const { result } = await run({ backupId: newBackupId(), database: DATABASE, table: FLAT });
    assert.equal(result.pieces.length, 2);
    const data = result.pieces[1]!;
    assert.equal(data.name, `${DATABASE}.${FLAT}/all`);
    assert.equal(data.details!.partition, 'tuple()');
    assert.equal(data.details!.selectedBy, 'whole table');
    assert.equal(data.rows, 5010);
    assert.equal(data.details!.rowsVerified, true);
    // Under 1 MiB of Native: ClickHouse 18.16 answers compress=1 with an empty body, so the worker
    // frames the plain export itself (blocks of method "none"); current releases compress it.
    const [{ version }] = (await select<{ version: string }>('SELECT version() AS version')) as [{ version: string }];
    assert.equal(data.details!.framedBy, version.startsWith('18.') ? 'worker' : 'server');
    assert.deepEqual(data.details!.compressionMethods, data.details!.framedBy === 'worker' ? ['none'] : [server.compression]);
    await assertStored(result.pieces);
    const copy = `${FLAT}_copy`;
    await restoreInto(copy, result.pieces);
    assert.deepEqual(await byMonth(copy), await byMonth(FLAT));
  });

  it('selects partitions of a composite key with quotes and backslashes in its values', async () => {
    const { result } = await run({ backupId: newBackupId(), database: DATABASE, table: REGIONS });
    const data = result.pieces.slice(1);
    assert.equal(data.length, 8); // 2 months x 4 regions
    const source = await select<{ id: string; n: string }>(
      `SELECT partition_id AS id, toString(sum(rows)) AS n FROM system.parts WHERE database = '${DATABASE}' AND table = '${REGIONS}' AND active GROUP BY id`,
    );
    const expected = await select<{ m: string; region: string; n: string }>(
      `SELECT toString(toYYYYMM(d)) AS m, region, toString(count()) AS n FROM ${q(REGIONS)} GROUP BY m, region`,
    );
    assert.equal(data.reduce((sum, p) => sum + p.rows!, 0), 4000);
    for (const piece of data) {
      assert.equal(piece.details!.rowsVerified, true, piece.name);
      assert.equal(String(piece.rows), source.find((s) => s.id === piece.details!.partitionId)!.n);
    }
    assert.ok(data.some((p) => String(p.details!.partition).includes("o\\'brien")), JSON.stringify(data.map((p) => p.details!.partition)));
    const copy = `${REGIONS}_copy`;
    await restoreInto(copy, result.pieces);
    const restored = await select<{ m: string; region: string; n: string }>(
      `SELECT toString(toYYYYMM(d)) AS m, region, toString(count()) AS n FROM ${q(copy)} GROUP BY m, region`,
    );
    const sort = (rows: typeof expected) => [...rows].sort((a, b) => `${a.m}${a.region}`.localeCompare(`${b.m}${b.region}`));
    assert.deepEqual(sort(restored), sort(expected));
  });

  it('backs up a table of the deprecated MergeTree(date, key, granularity) syntax, partitioned by month', async () => {
    // Current releases refuse the deprecated syntax unless told to allow it (an upgraded server
    // still holds such tables); 18.16 knows no such setting.
    await ch.command({
      query: `CREATE TABLE ${q(LEGACY)} (d Date, id UInt64, s String, v Float64) ENGINE = MergeTree(d, id, 8192)`,
      clickhouse_settings: server.version === '18.16' ? {} : { allow_deprecated_syntax_for_merge_tree: 1 },
    });
    await sql(`INSERT INTO ${q(LEGACY)} SELECT toDate('2025-12-20') + number % 20, number, toString(number), 0 FROM system.numbers LIMIT 2000`);
    const { result } = await run({ backupId: newBackupId(), database: DATABASE, table: LEGACY });
    assert.equal(result.pieces[0]!.details!.partitionKey, 'toYYYYMM(d)');
    assert.deepEqual(result.pieces.slice(1).map((p) => [p.details!.partitionId, p.rows, p.details!.rowsVerified]), [
      ['202512', 1200, true],
      ['202601', 800, true],
    ]);
    const copy = `${LEGACY}_copy`;
    await restoreInto(copy, result.pieces);
    assert.deepEqual(await byMonth(copy), await byMonth(LEGACY));
  });

  it("reads the same PARTITION BY out of engine_full as the server's own partition_key", async () => {
    // The branch for servers whose system.tables has no partition_key column, checked here
    // against the server's answer for every scratch table.
    const found = await select<{ name: string; engine: string; engine_full: string; partition_key: string }>(
      `SELECT name, engine, engine_full, partition_key FROM system.tables WHERE database = '${DATABASE}' AND engine LIKE '%MergeTree'`,
    );
    assert.ok(found.length >= 3);
    for (const t of found) assert.equal(partitionExpression(t.engine, t.engine_full), t.partition_key, t.name);
  });

  it('writes only the schema of a table that is not MergeTree (Memory, View), and says so', async () => {
    const { result } = await run({ backupId: newBackupId(), database: DATABASE, table: MEMO });
    assert.equal(result.pieces.length, 1);
    assert.equal(result.pieces[0]!.details!.engine, 'Memory');
    assert.equal(result.pieces[0]!.details!.dataExported, false);
    assert.match(String(result.pieces[0]!.details!.dataSkippedReason), /not of the MergeTree family/);
    await assertStored(result.pieces);

    const view = await run({ backupId: newBackupId(), database: DATABASE, table: VIEW });
    assert.deepEqual(view.result.pieces.map((p) => p.details!.engine), ['View']);
    const [show] = await select<{ statement: string }>(`SHOW CREATE TABLE ${q(VIEW)}`);
    assert.equal((await download(view.result.pieces[0]!.key)).toString('utf8'), show!.statement);
  });

  it('fails without retrying for a table that does not exist or a bad name', async () => {
    await assert.rejects(run({ backupId: newBackupId(), database: DATABASE, table: `missing_${suffix}` }), (err: Error & { nonRetryable?: boolean }) => {
      assert.match(err.message, /does not exist/);
      assert.equal(err.nonRetryable, true);
      return true;
    });
    await assert.rejects(run({ backupId: newBackupId(), database: DATABASE, table: 'a\u0000b' }), /control characters/);
    await assert.rejects(run({ backupId: '..', database: DATABASE, table: EVENTS }), /backupId "\.\." must be/);
    await assert.rejects(run({ backupId: 'a/../b', database: DATABASE, table: EVENTS }), /backupId "a\/\.\.\/b" must be/);
  });

  it('stops the export when the activity is cancelled, leaving no complete piece or upload behind', async () => {
    await sql(`CREATE TABLE ${q(BIG)} (d Date, id UInt64, s String) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id`);
    await sql(
      `INSERT INTO ${q(BIG)} SELECT toDate('2026-05-01'), number, concat(toString(cityHash64(number)), toString(cityHash64(number + 1))) FROM system.numbers LIMIT 3000000`,
    );
    const backupId = newBackupId();
    let cancelled = false;
    await assert.rejects(
      run(
        { backupId, database: DATABASE, table: BIG },
        {
          onHeartbeat: (d, env) => {
            if (!cancelled && d.bytes > 0 && d.partitionsDone === 0) {
              cancelled = true;
              setImmediate(() => env.cancel());
            }
          },
        },
      ),
      (err: Error) => {
        assert.ok(err instanceof CancelledFailure, `${err.name}: ${err.message}`);
        return true;
      },
    );
    assert.ok(cancelled, 'the export was under way when cancelled');
    const Bucket = config.objectStore.backupBucket;
    const key = `backups/${backupId}/clickhouse/${DATABASE}/${BIG}/202605.native`;
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: markerKey(key) })));
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket, Key: key })));
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: key }));
    assert.equal((uploads.Uploads ?? []).length, 0);
    // ...and the server stopped reading: the export query is gone from system.processes.
    await eventually('the cancelled export query to end', async () => {
      const running = await select<{ n: string }>(
        `SELECT count() AS n FROM system.processes WHERE query LIKE '%${BIG}%FORMAT Native%' AND query NOT LIKE '%system.processes%'`,
      );
      return Number(running[0]?.n) === 0 ? true : undefined;
    }, 10_000);
  });
});
