import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { repoRoot } from '../../localStack/paths';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, type WorkerProcess } from '../helpers/workerProcess';

// The ballast CLI against the real stack, run as an operator runs it (scripts/ballast), with a
// real worker process (scripts/worker) serving metrics. Everything here is named cli-<id>: its
// task queue, schedules (paused, deleted at the end) and workflow ids.

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the ballast CLI and the worker metrics (real stack)', { timeout: 20 * 60_000 }, () => {
  const id = randomUUID().slice(0, 8);
  let loaded: LoadedConfig;
  let approvers: Approvers;
  let worker: WorkerProcess;
  let client: Client;
  let metricsUrl: string;
  let backupId: string;

  /** Runs `ballast args...` with this test's config; `-o json` output is parsed (it must parse). */
  function ballast(args: string[], env: Record<string, string> = {}): Promise<Ran> {
    return new Promise((resolve, reject) => {
      const child = spawn('bash', [path.join(repoRoot, 'scripts/ballast'), ...args], {
        cwd: repoRoot,
        env: { ...process.env, BALLAST_CONFIG: loaded.path, BALLAST_OPERATOR: 'carol', SSH_AUTH_SOCK: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        let json: Record<string, unknown> = {};
        if (args.includes('json')) {
          try {
            json = JSON.parse(stdout) as Record<string, unknown>;
          } catch (err) {
            reject(new Error(`ballast ${args.join(' ')}: stdout is not one JSON document (${(err as Error).message}):\n${stdout}\nstderr:\n${stderr}`));
            return;
          }
        }
        resolve({ code, stdout, stderr, json });
      });
    });
  }

  async function scrape(): Promise<Map<string, number>> {
    const text = await (await fetch(metricsUrl)).text();
    const values = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (m) values.set(m[1]!, Number(m[2]));
    }
    values.set('__sdk_lines', text.split('\n').filter((l) => l.startsWith('temporal_')).length);
    return values;
  }

  before(async () => {
    approvers = await createApprovers(['alice', 'bob'], ['mallory']);
    const [port, sdkPort] = [await freePort(), await freePort()];
    loaded = writeDerivedConfig(`cli-${id}`, (raw) => {
      raw.temporal = { ...raw.temporal, taskQueue: `cli-${id}` };
      raw.backup = { ...raw.backup, schedule: { ...raw.backup?.schedule, enabled: false, scheduleId: `cli-${id}-backup` } };
      raw.drill = { ...raw.drill, schedule: { ...raw.drill?.schedule, enabled: false, scheduleId: `cli-${id}-drill` } };
      raw.approvals = { ...raw.approvals, allowedSignersFile: approvers.allowedSignersFile, approvers: ['alice', 'bob'], fourEyes: true };
      raw.metrics = { port, sdkPort, host: '127.0.0.1' };
    });
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    worker = await spawnWorker(loaded.path);
    const connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace });
  });

  after(async () => {
    await worker?.stop();
    for (const scheduleId of [`cli-${id}-backup`, `cli-${id}-drill`]) await client?.schedule.getHandle(scheduleId).delete().catch(() => undefined);
    await client?.connection.close();
    if (loaded) rmSync(loaded.path, { force: true });
  });

  it('ballast backup --wait exits 0 and prints the backup id; /metrics counts the success and moves the timestamp', async () => {
    const before = await scrape();
    assert.equal(before.get('ballast_backup_success_total'), 0, 'counters start at zero');
    assert.equal(before.get('ballast_backup_failure_total'), 0);
    assert.ok((before.get('__sdk_lines') ?? 0) > 0, "the Temporal SDK's metrics are served on the same endpoint");
    const timestampBefore = before.get('ballast_backup_last_successful_timestamp') ?? 0;

    const text = await ballast(['backup', '--wait', '--no-retention', '--id', `cli-${id}-backup-1`]);
    assert.equal(text.code, 0, text.stderr);
    const printed = /backup (\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{6})/.exec(text.stdout);
    assert.ok(printed, `the backup id is printed: ${text.stdout}`);
    backupId = printed[1]!;
    assert.match(text.stderr, /backing up|writing manifest|pre-flight|planning/, 'a progress line from the status query went to stderr');

    const after = await eventually('the success to be counted', async () => {
      const m = await scrape();
      return m.get('ballast_backup_success_total') === 1 ? m : undefined;
    }, 15_000, 500);
    assert.equal(after.get('ballast_backup_attempt_total'), 1);
    assert.equal(after.get('ballast_backup_failure_total'), 0);
    assert.ok((after.get('ballast_backup_last_successful_timestamp') ?? 0) > timestampBefore, 'the last success timestamp moved');
    assert.ok((after.get('ballast_backup_duration_seconds_count') ?? 0) === 1);
    const bucket = loaded!.config.objectStore.backupBucket;
    assert.ok((after.get(`ballast_backup_rpo_exposure_seconds{bucket="${bucket}"}`) ?? -1) >= 0, 'the RPO exposure is known once a backup is');
    assert.ok((after.get('process_resident_memory_bytes') ?? 0) > 0, "the worker process's own figures are served");
  });

  it('ballast backups and status show the backup just taken', async () => {
    const list = await ballast(['backups', '-o', 'json']);
    assert.equal(list.code, 0, list.stderr);
    const entry = (list.json.backups as { backupId: string; state: string; bytes: number; components: string[] }[]).find((b) => b.backupId === backupId);
    assert.ok(entry, `${backupId} is listed`);
    assert.equal(entry.state, 'complete');
    assert.ok(entry.bytes > 0 && entry.components.includes('postgres'));

    const shown = await ballast(['backups', 'show', backupId, '-o', 'json']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((shown.json.backup as { backupId: string }).backupId, backupId);
    assert.equal(shown.json.workflowId, `cli-${id}-backup-1`);

    const status = await ballast(['status', '-o', 'json']);
    assert.equal(status.code, 0, status.stderr);
    const last = status.json.lastCompleteBackup as { backupId: string; rpoExposureSeconds: number };
    // Other suites may back up meanwhile: the newest complete backup is this one or a newer one.
    assert.ok(last.backupId >= backupId, `status shows ${last.backupId}, not older than ${backupId}`);
    const statusText = await ballast(['status']);
    assert.equal(statusText.code, 0, statusText.stderr);
    assert.match(statusText.stdout, /last complete backup: \S+/);

    const run = await ballast(['status', `cli-${id}-backup-1`, '-o', 'json']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json.status, 'COMPLETED');
    assert.equal((run.json.result as { backupId: string }).backupId, backupId);
  });

  it('ballast restore with a bad target exits 2 and names the flag, starting nothing', async () => {
    for (const target of ['postgres:shop', 'mysql:shop=copy', 'postgres:shop=not-an-identifier']) {
      const ran = await ballast(['restore', '--target', target, '--id', `cli-${id}-bad`, '-o', 'json']);
      assert.equal(ran.code, 2, `${target}: ${ran.stderr}`);
      assert.match(String((ran.json.error as { message: string }).message), /--target/);
      assert.match(ran.stderr, /--target/);
    }
    await assert.rejects(client.workflow.getHandle(`cli-${id}-bad`).describe(), 'no run was started');
  });

  it('a restore waits for approval (exit 4); an unlisted key is refused (exit 3); a listed approver rejects it', async () => {
    const workflowId = `cli-${id}-restore`;
    const waiting = await ballast(['restore', '--backup', backupId, '--components', 'postgres', '--target', `postgres:shop=cli_${id}_shop`, '--wait', '--id', workflowId, '-o', 'json']);
    assert.equal(waiting.code, 4, waiting.stderr);
    assert.equal(waiting.json.outcome, 'waiting for approval');
    const plan = (waiting.json.approval as { plan: { hash: string; actions: string[] }; requester: string }).plan;
    assert.match(plan.hash, /^sha256:[0-9a-f]{64}$/);
    assert.equal((waiting.json.approval as { requester: string }).requester, 'carol', 'the run records the operator who started it');

    const keyDir = path.dirname(approvers.allowedSignersFile);
    const refused = await ballast(['approve', workflowId, '--key', path.join(keyDir, 'mallory'), '--reason', 'cli test', '--yes', '-o', 'json']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(String((refused.json.error as { message: string }).message), /not in the allowed-signers file/);

    const rejected = await ballast(['reject', workflowId, '--key', path.join(keyDir, 'alice'), '--reason', 'cli test: nothing to restore', '--yes', '-o', 'json']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.equal(rejected.json.planHash, plan.hash);
    assert.equal(rejected.json.signed, true);

    const ended = await eventually('the rejected restore to end', async () => {
      const s = await ballast(['status', workflowId, '-o', 'json']);
      return s.json.status === 'FAILED' ? s : undefined;
    }, 60_000);
    assert.match(String(ended.json.failure), /not approved \(rejected by alice/);
  });

  it("every command's -o json is one parseable document, errors included", async () => {
    const health = await ballast(['health', '--wait', '--id', `cli-${id}-health`, '-o', 'json']);
    assert.ok(health.code === 0 || health.code === 1, health.stderr);
    assert.equal(health.json.workflowType, 'healthCheck');
    assert.equal(health.json.exitCode, health.code);
    const started = await ballast(['health', '--id', `cli-${id}-health-2`, '-o', 'json']);
    assert.equal(started.code, 0);
    assert.equal(started.json.outcome, 'started');
    assert.match(String(started.json.webUi), /^http:\/\/127\.0\.0\.1:8233\/namespaces\/default\/workflows\/cli-/);
    const cases: [string[], number][] = [
      [['pause', `cli-${id}-health`, '-o', 'json'], 2],
      [['abort', 'cli-no-such-run', '-o', 'json'], 2],
      [['approve', `cli-${id}-health`, '--yes', '--reason', 'x', '-o', 'json'], 2],
      [['roll', '--brokers', 'one', '-o', 'json'], 2],
      [['drill', '--components', 'mysql', '-o', 'json'], 2],
      [['backups', 'show', 'no-such-backup', '-o', 'json'], 2],
      [['nope', '-o', 'json'], 2],
    ];
    for (const [args, code] of cases) {
      const ran = await ballast(args);
      assert.equal(ran.code, code, `${args.join(' ')}: ${ran.stderr}`);
      assert.equal(ran.json.ok, false);
      assert.equal(ran.json.exitCode, code);
      assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
