import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Info } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createClickHouseBackupActivities } from '../../activities/clickhouse/backup';
import {
  createClickHouseRestoreActivities,
  type ClickHouseRestoreProgress,
  type ClickHouseRestoreRequest,
} from '../../activities/clickhouse/restore';
import { OWNER_TABLE } from '../../activities/clickhouse/ownership';
import { renameCreateStatement } from '../../activities/clickhouse/createStatement';
import { sideNames } from '../../activities/clickhouse/sideTables';
import type { Config } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { assertServerVersion, clickhouseServers } from '../helpers/clickhouseServers';
import { makeBackupId } from '../../contracts/backupId';
import type { BackupPiece, ComponentResult } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyResult } from '../../contracts/restoreTypes';
import { listAllKeys } from '../helpers/backupBucket';

// Real ClickHouse (the stack's 18.16) and real MinIO. Everything here is the test's own: two
// scratch databases with a random suffix and backup folders nobody else uses; all removed after.
const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
const DATABASE = `ballast_test_chrestore_${suffix}`;
const TARGET = `ballast_test_chrestore_${suffix}_drill`;
// Expected failures would otherwise each print a WARN with a stack trace.
const quiet = { logger: new DefaultLogger('ERROR') };
const EVENTS = 'events';
const RECENT = 'recent'; // a View over events: schema only

interface Month {
  rows: number;
  hash: string;
}

for (const server of clickhouseServers()) describe(`ClickHouse restore activities on ClickHouse ${server.version} (real stack)`, () => {
  let config: Config;
  let ch: ClickHouseClient;
  let s3: S3Client;
  let backup: ReturnType<typeof createClickHouseBackupActivities>;
  let restore: ReturnType<typeof createClickHouseRestoreActivities>;
  const backupIds: string[] = [];
  const newBackupId = () => {
    const id = makeBackupId(new Date(), randomUUID().replace(/-/g, ''));
    backupIds.push(id);
    return id;
  };

  const sql = async (query: string) => ch.command({ query });
  const select = async <T>(query: string) => (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
  const q = (database: string, table: string) => `${database}.${table}`;

  /** Rows and a content hash per month (= partition id), from the data itself. */
  const byMonth = async (database: string, table = EVENTS): Promise<Record<string, Month>> =>
    Object.fromEntries(
      (await select<{ p: string; n: string; h: string }>(
        `SELECT toString(toYYYYMM(d)) AS p, count() AS n, toString(sum(cityHash64(d, id, s, v))) AS h FROM ${q(database, table)} GROUP BY p ORDER BY p`,
      )).map((r) => [r.p, { rows: Number(r.n), hash: r.h }]),
    );
  /** Active rows per partition id (system.parts). */
  const partRows = async (database: string, table = EVENTS): Promise<Record<string, number>> =>
    Object.fromEntries(
      (await select<{ id: string; n: string }>(
        `SELECT partition_id AS id, toString(sum(rows)) AS n FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active GROUP BY id ORDER BY id`,
      )).map((r) => [r.id, Number(r.n)]),
    );
  /** Names of the active parts: a reload or a recreated table gives new ones. */
  const partNames = async (database: string, table = EVENTS): Promise<string[]> =>
    (await select<{ name: string }>(
      `SELECT name FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active ORDER BY name`,
    )).map((r) => r.name);
  /** Active parts with their modification times: a part loaded again, even under the same name, is newer. */
  const partStamps = async (database: string, table = EVENTS): Promise<string[]> =>
    (await select<{ p: string }>(
      `SELECT concat(name, '@', toString(modification_time)) AS p FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active ORDER BY p`,
    )).map((r) => r.p);
  const tablesIn = async (database: string): Promise<string[]> =>
    (await select<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`)).map((r) => r.name);
  const databaseEngine = async (database: string): Promise<string> =>
    (await select<{ engine: string }>(`SELECT engine FROM system.databases WHERE name = '${database}'`))[0]!.engine;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const newRestoreId = () => `test-chrestore-${randomUUID()}`;
  /** The one run that restores into TARGET, as a drill's restore does: its marker is on TARGET. */
  const drillRestoreId = newRestoreId();
  const databaseExists = async (name: string) =>
    Number((await select<{ n: string | number }>(`SELECT count() AS n FROM system.databases WHERE name = '${name}'`))[0]?.n) === 1;

  async function runBackup(table: string): Promise<ComponentResult> {
    const env = new MockActivityEnvironment({}, quiet);
    return env.run<[{ backupId: string; database: string; table: string }], ComponentResult, typeof backup.backupClickHouseTable>(
      backup.backupClickHouseTable,
      { backupId: newBackupId(), database: DATABASE, table },
    );
  }

  /** Runs restoreClickHouseTable the way a worker would, recording its heartbeats (into `heartbeats`, so a failed run's are kept too). */
  async function runRestore(
    request: ClickHouseRestoreRequest,
    info: Partial<Info> = {},
    heartbeats: ClickHouseRestoreProgress[] = [],
  ): Promise<{ result: RestoreStepResult; heartbeats: ClickHouseRestoreProgress[] }> {
    const env = new MockActivityEnvironment(info, quiet);
    env.on('heartbeat', (d: ClickHouseRestoreProgress) => heartbeats.push(d));
    const result = await env.run<[ClickHouseRestoreRequest], RestoreStepResult, typeof restore.restoreClickHouseTable>(
      restore.restoreClickHouseTable,
      request,
    );
    return { result, heartbeats };
  }

  /** A run restoring the events table from the backup into `targetDatabase`. */
  const eventsRequest = (targetDatabase: string, restoreId = newRestoreId()): ClickHouseRestoreRequest => ({
    restoreId,
    backupId,
    database: DATABASE,
    table: EVENTS,
    targetDatabase,
    pieces: events.pieces,
  });

  /**
   * Restores the events table into `targetDatabase` from a copy of its backup whose last partition
   * object (202603) was deleted after the plan: the run fails once the first two are loaded.
   * `putBack` copies the object in again.
   */
  async function failMidLoad(targetDatabase: string) {
    const Bucket = config.objectStore.backupBucket;
    const brokenId = newBackupId();
    const pieces = events.pieces.map((p) => ({ ...p, key: p.key.replace(`backups/${backupId}/`, `backups/${brokenId}/`) }));
    const copy = (from: string, to: string) =>
      s3.send(new CopyObjectCommand({ Bucket, Key: to, CopySource: `${Bucket}/${from.split('/').map(encodeURIComponent).join('/')}` }));
    for (const [i, p] of events.pieces.entries()) await copy(p.key, pieces[i]!.key);
    const lost = pieces.at(-1)!;
    assert.equal(lost.details!.partitionId, '202603');
    await s3.send(new DeleteObjectCommand({ Bucket, Key: lost.key }));
    const request: ClickHouseRestoreRequest = { restoreId: newRestoreId(), backupId: brokenId, database: DATABASE, table: EVENTS, targetDatabase, pieces };
    const heartbeats: ClickHouseRestoreProgress[] = [];
    await assert.rejects(runRestore(request, {}, heartbeats), (err: Error) => {
      assert.match(err.message, /specified key does not exist|NoSuchKey/i);
      return true;
    });
    return {
      request,
      heartbeats,
      names: sideNames(EVENTS, request.restoreId),
      putBack: async () => {
        await copy(events.pieces.at(-1)!.key, lost.key);
      },
    };
  }

  async function runVerify(targetDatabase: string, pieces: BackupPiece[], table = EVENTS): Promise<VerifyResult> {
    const env = new MockActivityEnvironment({}, quiet);
    return env.run(restore.verifyClickHouseTable, { database: DATABASE, table, targetDatabase, pieces });
  }

  async function runDrop(database: string, owner: string): Promise<{ dropped: boolean }> {
    const env = new MockActivityEnvironment({}, quiet);
    return env.run(restore.dropClickHouseDatabase, { database, owner });
  }

  const invalidInput = (pattern: RegExp) => (err: Error & { nonRetryable?: boolean; type?: string }) => {
    assert.match(err.message, pattern);
    assert.equal(err.nonRetryable, true, 'not retried');
    assert.equal(err.type, 'InvalidInput');
    return true;
  };

  let events: ComponentResult;
  let view: ComponentResult;
  let source: Record<string, Month>;
  let backupId: string;
  const dataPieces = () => events.pieces.filter((p) => !p.name.endsWith('/schema'));

  before(async () => {
    const loaded = server.load();
    config = loaded.config;
    const connections = createConnections(config, loaded.path);
    ch = connections.clickhouse();
    await assertServerVersion(ch, server);
    s3 = connections.s3();
    backup = createClickHouseBackupActivities({ config, connections });
    restore = createClickHouseRestoreActivities({ config, connections });

    await sql(`CREATE DATABASE ${DATABASE}`);
    await sql(`CREATE TABLE ${q(DATABASE, EVENTS)} (d Date, id UInt64, s String, v Float64) ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id`);
    // 202601 and 202603: small (under 1 MiB of Native: 18.16's worker-framed export);
    // 202602: about 2.5 MiB of Native, compressed by the server itself.
    await sql(
      `INSERT INTO ${q(DATABASE, EVENTS)} SELECT toDate('2026-01-01') + number % 31, number, concat('r', toString(number)), number / 3 FROM system.numbers LIMIT 500`,
    );
    await sql(
      `INSERT INTO ${q(DATABASE, EVENTS)} SELECT toDate('2026-02-01') + number % 28, 100000 + number,
         concat(toString(number), ':', arrayStringConcat(arrayMap(x -> hex(cityHash64(number, x)), range(40)))), number / 7
       FROM system.numbers LIMIT 4000`,
    );
    await sql(
      `INSERT INTO ${q(DATABASE, EVENTS)} SELECT toDate('2026-03-01') + number % 31, 200000 + number, 'o''brien \\\\ "x"\\n\\tü', -1 * number FROM system.numbers LIMIT 300`,
    );
    await sql(`CREATE VIEW ${q(DATABASE, RECENT)} AS SELECT id, s FROM ${q(DATABASE, EVENTS)} WHERE d >= toDate('2026-02-01')`);

    source = await byMonth(DATABASE);
    assert.deepEqual(Object.keys(source), ['202601', '202602', '202603']);
    events = await runBackup(EVENTS);
    backupId = events.pieces[0]!.key.split('/')[1]!;
    view = await runBackup(RECENT);
  });

  after(async () => {
    for (const database of [DATABASE, TARGET, `${TARGET}_own`]) await sql(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    const Bucket = config.objectStore.backupBucket;
    for (const id of backupIds) {
      const keys = await listAllKeys(s3, Bucket, `backups/${id}/`).catch(() => [] as string[]);
      for (let at = 0; at < keys.length; at += 1000) {
        const Objects = keys.slice(at, at + 1000).map((Key) => ({ Key }));
        await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects } })).catch(() => undefined);
      }
    }
    await ch?.close();
    s3?.destroy();
  });

  it('backs up the test table as expected (small and large partitions)', async () => {
    assert.match(backupId, /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6}$/);
    assert.deepEqual(
      dataPieces().map((p) => [p.details!.partitionId, p.rows]),
      Object.entries(source).map(([id, m]) => [id, m.rows]),
    );
    const [{ version }] = (await select<{ version: string }>('SELECT version() AS version')) as [{ version: string }];
    const framing = dataPieces().map((p) => p.details!.framedBy);
    // On 18.16 the small partitions take the worker-framed path, the large one the server's.
    if (version.startsWith('18.')) assert.deepEqual(framing, ['worker', 'server', 'worker']);
    assert.equal(view.pieces.length, 1);
    assert.equal(view.pieces[0]!.details!.dataExported, false);
  });

  it('restores over an existing, damaged table in the same database, keeps the damaged one aside, and gives back the same data', async () => {
    // Damage the source: one partition gone, some rows that were never backed up.
    await sql(`ALTER TABLE ${q(DATABASE, EVENTS)} DROP PARTITION 202602`);
    await sql(`INSERT INTO ${q(DATABASE, EVENTS)} SELECT toDate('2026-04-01'), 900000 + number, 'junk', 0 FROM system.numbers LIMIT 7`);
    const damagedRows = 500 + 300 + 7;
    const damaged = await byMonth(DATABASE);
    const damagedParts = await partNames(DATABASE);
    assert.notDeepEqual(damaged, source);

    const request = eventsRequest(DATABASE);
    const names = sideNames(EVENTS, request.restoreId);
    const { result, heartbeats } = await runRestore(request);
    assert.deepEqual(await byMonth(DATABASE), source);
    assert.deepEqual(await partRows(DATABASE), Object.fromEntries(Object.entries(source).map(([id, m]) => [id, m.rows])));
    assert.equal(result.component, 'clickhouse');
    assert.equal(result.unit, `clickhouse ${DATABASE}.${EVENTS}`);
    assert.equal(result.rows, 4800);
    assert.equal(result.bytes, dataPieces().reduce((n, p) => n + p.size, 0));
    assert.ok(result.durationMs >= 0);
    assert.equal(result.resumed, undefined);
    // The damaged table is kept, whole: the very parts it had, under the aside name the notes give.
    assert.ok(
      result.notes.includes(`the table it replaced (${damagedRows} rows) is kept as ${DATABASE}.${names.aside}: drop it once the restore is accepted`),
      JSON.stringify(result.notes),
    );
    assert.deepEqual(await byMonth(DATABASE, names.aside), damaged);
    assert.deepEqual(await partNames(DATABASE, names.aside), damagedParts);
    assert.deepEqual(await tablesIn(DATABASE), [EVENTS, names.aside, RECENT].sort(), 'no loading table left behind');
    // EXCHANGE where the database is Atomic, one RENAME of both tables elsewhere (18.16).
    const swappedBy = (await databaseEngine(DATABASE)) === 'Atomic' ? 'swapped in by EXCHANGE TABLES' : 'swapped in by RENAME TABLE';
    assert.ok(result.notes.includes(swappedBy), JSON.stringify(result.notes));
    const last = heartbeats.at(-1)!;
    assert.equal(last.phase, 'swap');
    assert.deepEqual(last.done, ['202601', '202602', '202603']);
    assert.equal(last.partitionsDone, 3);
    assert.equal(last.bytes, result.bytes);
    // The view over the table still works against the restored table.
    assert.equal(Number((await select<{ n: string }>(`SELECT count() AS n FROM ${q(DATABASE, RECENT)}`))[0]!.n), 4300);

    // A retry after the swap finds the work done, with its heartbeat details or without them
    // (lost with a dead worker): nothing loaded again, nothing swapped back.
    const restoredParts = await partStamps(DATABASE);
    for (const info of [{ attempt: 2, heartbeatDetails: last }, { attempt: 3 }]) {
      const retry = await runRestore(request, info);
      assert.equal(retry.result.resumed, true);
      assert.ok(retry.result.notes.includes(`${DATABASE}.${EVENTS} was already restored by this run`), JSON.stringify(retry.result.notes));
      assert.equal(retry.result.rows, 4800);
      assert.deepEqual(await partStamps(DATABASE), restoredParts);
      assert.deepEqual(await byMonth(DATABASE, names.aside), damaged);
      assert.deepEqual(await tablesIn(DATABASE), [EVENTS, names.aside, RECENT].sort());
    }
  });

  it('re-creates a table saved in the deprecated MergeTree(date, key, granularity) syntax and loads it back', async () => {
    // Such tables live on in upgraded servers; current releases create them only when allowed.
    const legacy = 'legacy';
    await ch.command({
      query: `CREATE TABLE ${q(DATABASE, legacy)} (d Date, id UInt64) ENGINE = MergeTree(d, id, 8192)`,
      clickhouse_settings: server.version === '18.16' ? {} : { allow_deprecated_syntax_for_merge_tree: 1 },
    });
    await sql(`INSERT INTO ${q(DATABASE, legacy)} SELECT toDate('2025-12-20') + number % 20, number FROM system.numbers LIMIT 2000`);
    const saved = await runBackup(legacy);
    await sql(`DROP TABLE ${q(DATABASE, legacy)}`);
    const { result } = await runRestore({
      restoreId: newRestoreId(),
      backupId: saved.pieces[0]!.key.split('/')[1]!,
      database: DATABASE,
      table: legacy,
      targetDatabase: DATABASE,
      pieces: saved.pieces,
    });
    assert.equal(result.rows, 2000);
    const months = await select<{ m: string | number; n: string | number }>(`SELECT toYYYYMM(d) AS m, count() AS n FROM ${q(DATABASE, legacy)} GROUP BY m ORDER BY m`);
    assert.deepEqual(months.map((r) => [Number(r.m), Number(r.n)]), [
      [202512, 1200],
      [202601, 800],
    ]);
  });

  it('restores after the whole database was dropped (creates the database again)', async () => {
    await sql(`DROP DATABASE ${DATABASE}`);
    const { result } = await runRestore(eventsRequest(DATABASE));
    assert.deepEqual(await byMonth(DATABASE), source);
    assert.deepEqual(result.notes, [`renamed in from ${EVENTS}__ballast_loading: there was no table to replace`]);
    const viewResult = await runRestore({ restoreId: newRestoreId(), backupId, database: DATABASE, table: RECENT, targetDatabase: DATABASE, pieces: view.pieces });
    assert.deepEqual(viewResult.result.notes, [`renamed in from ${RECENT}__ballast_loading: there was no table to replace`, 'engine View: schema only']);
    assert.equal(viewResult.result.rows, 0);
    assert.equal(Number((await select<{ n: string }>(`SELECT count() AS n FROM ${q(DATABASE, RECENT)}`))[0]!.n), 4300);
  });

  it('restores into a different target database, leaving the source alone, and marks that database as the run\'s own', async () => {
    const sourceParts = await partNames(DATABASE);
    const { result } = await runRestore(eventsRequest(TARGET, drillRestoreId));
    assert.equal(result.unit, `clickhouse ${TARGET}.${EVENTS}`);
    assert.deepEqual(await byMonth(TARGET), source);
    assert.deepEqual(await partNames(DATABASE), sourceParts, 'the source table was not touched');
    assert.ok(result.notes.some((n) => n.includes(`into database ${TARGET}`)), JSON.stringify(result.notes));
    const [{ statement }] = (await select<{ statement: string }>(`SHOW CREATE TABLE ${q(TARGET, EVENTS)}`)) as [{ statement: string }];
    assert.match(statement, new RegExp(`^CREATE TABLE ${TARGET}\\.${EVENTS}\\s`));

    // A view keeps reading the source database: restored, and the report says so.
    const viewResult = await runRestore({ restoreId: drillRestoreId, backupId, database: DATABASE, table: RECENT, targetDatabase: TARGET, pieces: view.pieces });
    assert.ok(viewResult.result.notes.includes('engine View: schema only'));
    assert.ok(viewResult.result.notes.some((n) => n.includes(`still refers to database ${DATABASE}`)), JSON.stringify(viewResult.result.notes));
    const engines = await select<{ name: string; engine: string }>(`SELECT name, engine FROM system.tables WHERE database = '${TARGET}' ORDER BY name`);
    assert.deepEqual(engines, [
      { name: OWNER_TABLE, engine: 'TinyLog' },
      { name: EVENTS, engine: 'MergeTree' },
      { name: RECENT, engine: 'View' },
    ]);
    assert.deepEqual(await select<{ owner: string }>(`SELECT owner FROM ${q(TARGET, OWNER_TABLE)}`), [{ owner: drillRestoreId }], 'one marker row, naming the run');
  });

  it('verifies a restored table, and reports a dropped partition as a failing check without throwing', async () => {
    const good = await runVerify(TARGET, events.pieces);
    assert.equal(good.ok, true, JSON.stringify(good.checks));
    assert.equal(good.unit, `clickhouse ${TARGET}.${EVENTS}`);
    const names = good.checks.map((c) => c.name);
    for (const id of Object.keys(source)) assert.ok(names.includes(`clickhouse ${TARGET}.${EVENTS} partition ${id} rows`), id);
    assert.deepEqual(good.checks.find((c) => c.name === `clickhouse ${TARGET}.${EVENTS} rows`), {
      name: `clickhouse ${TARGET}.${EVENTS} rows`,
      expected: 4800,
      actual: 4800,
      ok: true,
    });
    const viewVerified = await runVerify(TARGET, view.pieces, RECENT);
    assert.equal(viewVerified.ok, true, JSON.stringify(viewVerified.checks));

    await sql(`ALTER TABLE ${q(TARGET, EVENTS)} DROP PARTITION 202602`);
    const bad = await runVerify(TARGET, events.pieces);
    assert.equal(bad.ok, false);
    const failing = bad.checks.filter((c) => !c.ok);
    assert.deepEqual(
      failing.map((c) => [c.name, c.expected, c.actual]),
      [
        [`clickhouse ${TARGET}.${EVENTS} partition 202602 rows`, 4000, 0],
        [`clickhouse ${TARGET}.${EVENTS} rows`, 4800, 800],
      ],
    );

    // A missing table is a failing check too, not an exception.
    const missing = await runVerify(`${TARGET}_missing`, events.pieces);
    assert.equal(missing.ok, false);
    assert.deepEqual(missing.checks.map((c) => [c.name.split(' ').slice(2).join(' '), c.actual]), [['exists', 'missing']]);
  });

  it('a ClickHouse restore that fails mid-load (a partition object deleted after the plan): the original table is still there with all its rows', async () => {
    // The original differs from the backup (the verify test dropped a partition of it).
    const original = await byMonth(TARGET);
    const originalParts = await partStamps(TARGET);
    assert.notDeepEqual(original, source);
    const tablesBefore = await tablesIn(TARGET);

    const { names, heartbeats } = await failMidLoad(TARGET);
    assert.deepEqual(await byMonth(TARGET), original, 'every row of the original is there');
    assert.deepEqual(await partStamps(TARGET), originalParts, 'the original was not touched at all');
    assert.ok(!(await tablesIn(TARGET)).includes(names.aside), 'nothing was swapped');
    assert.deepEqual(await tablesIn(TARGET), [...tablesBefore, names.loading].sort(), 'only the loading table was added');
    // The two partitions before the missing one were loaded beside it, and the heartbeat says so.
    assert.deepEqual(await partRows(TARGET, names.loading), { '202601': 500, '202602': 4000 });
    assert.equal(heartbeats.at(-1)!.phase, 'load');
    assert.deepEqual(heartbeats.at(-1)!.done, ['202601', '202602']);
  });

  it('resumes a retried attempt after the partitions its heartbeat details list, without loading them again, then swaps', async () => {
    const original = await byMonth(TARGET);
    const { request, names, heartbeats, putBack } = await failMidLoad(TARGET);
    await putBack();
    const kept = await partStamps(TARGET, names.loading);
    assert.equal(kept.length, 2);
    await sleep(1100); // part modification times have one-second resolution

    const details = heartbeats.at(-1)!;
    const resumed = await runRestore(request, { attempt: 2, heartbeatDetails: details });
    const { result } = resumed;
    assert.equal(result.resumed, true);
    assert.ok(result.notes.some((n) => n.startsWith('resumed: 2 of 3')), JSON.stringify(result.notes));
    assert.deepEqual(await byMonth(TARGET), source, 'every partition once: nothing loaded twice');
    const now = await partStamps(TARGET);
    for (const part of kept) assert.ok(now.includes(part), `part ${part} of a done partition is still there (not reloaded)`);
    assert.equal(now.length, kept.length + 1, 'one new part: the one partition left to load');
    assert.deepEqual(await byMonth(TARGET, names.aside), original, 'the replaced table is kept aside');
    assert.ok(!(await tablesIn(TARGET)).includes(names.loading));
    assert.deepEqual(resumed.heartbeats[0]!.done, ['202601', '202602']);
    assert.deepEqual(resumed.heartbeats.at(-1)!.done, ['202601', '202602', '202603']);
    assert.equal(result.bytes, dataPieces().reduce((n, p) => n + p.size, 0));
    assert.equal(result.rows, 4800);
  });

  it('loads from scratch when the loading table does not hold exactly what the heartbeat details say', async () => {
    // Details say 202601 is done, but 202602 and some of 202603 are there as well.
    const { request, names, putBack } = await failMidLoad(TARGET);
    await putBack();
    await sql(`INSERT INTO ${q(TARGET, names.loading)} SELECT toDate('2026-03-01'), 200000 + number, 'partial', 0 FROM system.numbers LIMIT 10`);
    const leftover = await partStamps(TARGET, names.loading);
    await sleep(1100);
    const details: ClickHouseRestoreProgress = { phase: 'load', partitionsDone: 1, bytes: dataPieces()[0]!.size, done: ['202601'] };
    const { result } = await runRestore(request, { attempt: 3, heartbeatDetails: details });
    assert.equal(result.resumed, undefined);
    assert.ok(result.notes.some((n) => n.startsWith('started over')), JSON.stringify(result.notes));
    assert.deepEqual(await byMonth(TARGET), source);
    const now = await partStamps(TARGET);
    for (const part of leftover) assert.ok(!now.includes(part), `part ${part} of the earlier attempt was dropped with its table`);
    assert.equal(Number((await select<{ n: string }>(`SELECT count() AS n FROM ${q(TARGET, EVENTS)} WHERE s = 'partial'`))[0]!.n), 0);

    // A retry without details (the crash came before the first heartbeat) loads from scratch too.
    const again = await failMidLoad(TARGET);
    await again.putBack();
    const retried = await runRestore(again.request, { attempt: 2 });
    assert.ok(retried.result.notes.some((n) => n.startsWith('started over')), JSON.stringify(retried.result.notes));
    assert.deepEqual(await byMonth(TARGET), source);
    assert.deepEqual(await byMonth(TARGET, again.names.aside), source, 'the table it replaced, kept');
  });

  it('refuses bad input before changing anything', async () => {
    const before = await partNames(TARGET);
    const request = eventsRequest(TARGET);
    await assert.rejects(runRestore({ ...request, restoreId: '' }), invalidInput(/restoreId must be a non-empty string/));
    await assert.rejects(runRestore({ ...request, targetDatabase: 'bad\u0000name' }), invalidInput(/targetDatabase contains control characters/));
    // 40 characters, but each of their 80 bytes takes three in a file name: no room for the side tables' suffixes.
    await assert.rejects(runRestore({ ...request, table: 'é'.repeat(40) }), invalidInput(/too long to restore beside itself/));
    // A Replicated table would share its ZooKeeper path with its side table.
    const replicatedSchema = { ...events.pieces[0]!, details: { ...events.pieces[0]!.details, engine: 'ReplicatedMergeTree' } };
    await assert.rejects(
      runRestore({ ...request, pieces: [replicatedSchema, ...dataPieces()] }),
      invalidInput(new RegExp(`${DATABASE}\\.${EVENTS} is ReplicatedMergeTree: .*ZooKeeper path`)),
    );
    await assert.rejects(runRestore({ ...request, table: '' }), invalidInput(/table must be a non-empty string/));
    await assert.rejects(runRestore({ ...request, targetDatabase: 'system' }), invalidInput(/targetDatabase "system" is a system database/));
    await assert.rejects(runRestore({ ...request, backupId: '../x' }), invalidInput(/backupId/));
    await assert.rejects(runRestore({ ...request, pieces: dataPieces() }), invalidInput(/pieces: no schema piece/));
    // Pieces of another table (the view's schema) do not belong to events.
    await assert.rejects(runRestore({ ...request, pieces: [...view.pieces, ...dataPieces()] }), invalidInput(/does not belong to/));
    const renamedPiece = { ...dataPieces()[0]!, details: { ...dataPieces()[0]!.details, partitionId: '209901' } };
    await assert.rejects(runRestore({ ...request, pieces: [events.pieces[0]!, renamedPiece] }), invalidInput(/details\.partitionId/));
    await assert.rejects(runVerify(TARGET, dataPieces()), invalidInput(/no schema piece/));
    assert.deepEqual(await partNames(TARGET), before, 'the target table was not touched');

    // A saved schema that names another table: refused before the table is dropped.
    const Bucket = config.objectStore.backupBucket;
    const otherId = newBackupId();
    const body = Buffer.from(`CREATE TABLE other.${EVENTS} ( d Date,  id UInt64) ENGINE = MergeTree ORDER BY id`);
    const key = `backups/${otherId}/clickhouse/${DATABASE}/${EVENTS}/schema.sql`;
    await s3.send(new PutObjectCommand({ Bucket, Key: key, Body: body }));
    const schema: BackupPiece = { ...events.pieces[0]!, key, size: body.length, sha256: undefined };
    await assert.rejects(
      runRestore({ ...request, backupId: otherId, pieces: [schema, ...dataPieces()] }),
      (err: Error & { nonRetryable?: boolean; type?: string }) => {
        assert.match(err.message, /names other\.events/);
        assert.equal(err.nonRetryable, true);
        assert.equal(err.type, 'UnexpectedSchema');
        return true;
      },
    );
    assert.deepEqual(await partNames(TARGET), before, 'the target table was not touched');
    assert.deepEqual(await byMonth(TARGET), source);
  });

  it('refuses to drop a production or system database and drops a scratch one', async () => {
    assert.ok(config.clickhouse.databases.some((d) => d.name === 'analytics'));
    // The refusals must come before any connection is made: activities whose ClickHouse client
    // cannot be built prove it, and a broken guard cannot drop the stack's real databases here.
    const loaded = server.load();
    const real = createConnections(loaded.config, loaded.path);
    const guarded = createClickHouseRestoreActivities({
      config,
      connections: {
        ...real,
        clickhouse: () => {
          throw new Error('connected to ClickHouse');
        },
      },
    });
    const drop = (database: string, activities = restore) => new MockActivityEnvironment({}, quiet).run(activities.dropClickHouseDatabase, { database, owner: drillRestoreId });
    const analyticsExisted = await databaseExists('analytics');
    await assert.rejects(drop('analytics', guarded), invalidInput(/database "analytics" is a configured production database/));
    await assert.rejects(drop('system', guarded), invalidInput(/system database/));
    await assert.rejects(drop('default', guarded), invalidInput(/system database/));
    await assert.rejects(drop('a\u0001b', guarded), invalidInput(/database contains control characters/));
    assert.equal(await databaseExists('analytics'), analyticsExisted);

    // Against the real server: a database the config lists (here the test's own source database)
    // is refused and still there afterwards.
    const withSource = { ...config, clickhouse: { ...config.clickhouse, databases: [...config.clickhouse.databases, { name: DATABASE, tables: [] }] } };
    const strict = createClickHouseRestoreActivities({ config: withSource, connections: real });
    await assert.rejects(drop(DATABASE, strict), invalidInput(/configured production database/));
    assert.equal(await databaseExists(DATABASE), true);

    // A scratch database one run restored into: only that run's teardown drops it.
    const own = `${TARGET}_own`;
    const ownRun = newRestoreId();
    await runRestore(eventsRequest(own, ownRun));
    await assert.rejects(runDrop(own, newRestoreId()), (err: Error & { type?: string }) => err.type === 'TargetRefused' && /marker does not name/.test(err.message));
    assert.equal(await databaseExists(own), true, "another run's teardown left it alone");
    // Several runs restored into TARGET: no single run owns it, so no teardown drops it.
    await assert.rejects(runDrop(TARGET, drillRestoreId), (err: Error) => /does not name .* alone/.test(err.message));
    const unmarked = `${TARGET}_unmarked`;
    await sql(`CREATE DATABASE IF NOT EXISTS ${unmarked}`);
    await assert.rejects(runDrop(unmarked, ownRun), (err: Error) => /no marker/.test(err.message));
    assert.equal(await databaseExists(unmarked), true);
    await sql(`DROP DATABASE IF EXISTS ${unmarked}`);
    assert.deepEqual(await runDrop(own, ownRun), { dropped: true });
    assert.equal(await databaseExists(own), false);
    assert.deepEqual(await runDrop(own, ownRun), { dropped: false });
    assert.equal(await databaseExists(DATABASE), true, 'only the named database was dropped');
  });
});

describe('renameCreateStatement', () => {
  it('renames bare, back-quoted and double-quoted names, and refuses any other prefix', () => {
    assert.equal(
      renameCreateStatement('CREATE TABLE db.t ( d Date) ENGINE = Memory', 'db', 't', 'scratch').statement,
      'CREATE TABLE `scratch`.`t` ( d Date) ENGINE = Memory',
    );
    assert.equal(
      renameCreateStatement('CREATE TABLE `my-db`.`we``ird\\`t`\n(\n    `d` Date\n)', 'my-db', 'we`ird`t', 'x').statement,
      'CREATE TABLE `x`.`we\\`ird\\`t`\n(\n    `d` Date\n)',
    );
    assert.deepEqual(renameCreateStatement('CREATE VIEW "db"."v" AS SELECT 1', 'db', 'v', 'db'), {
      kind: 'VIEW',
      statement: 'CREATE VIEW `db`.`v` AS SELECT 1',
    });
    assert.equal(
      renameCreateStatement('CREATE MATERIALIZED VIEW db.mv TO db.t AS SELECT 1', 'db', 'mv', 'z').statement,
      'CREATE MATERIALIZED VIEW `z`.`mv` TO db.t AS SELECT 1',
    );
    assert.throws(() => renameCreateStatement('CREATE TABLE db.other (d Date)', 'db', 't', 'x'), /names db\.other/);
    assert.throws(() => renameCreateStatement('CREATE TABLE db.tt (d Date)', 'db', 't', 'x'), /names db\.tt/);
    assert.throws(() => renameCreateStatement('CREATE TABLE t (d Date)', 'db', 't', 'x'), /does not name its database/);
    assert.throws(() => renameCreateStatement('ATTACH TABLE db.t (d Date)', 'db', 't', 'x'), /not a CREATE/);
  });
});
