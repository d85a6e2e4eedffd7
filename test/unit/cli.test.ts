import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { listOf, pairsOf, parseCommandLine } from '../../scripts/cli/args';
import { CliError, Exit } from '../../scripts/cli/errors';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { exitCodeOfFailure, follow, outcomeOfResult, progressLine } from '../../scripts/cli/follow';
import { main } from '../../scripts/cli/main';
import { chooseKey, principalsOf } from '../../scripts/cli/operator';
import { formatBytes, formatDuration, Output, table } from '../../scripts/cli/output';
import { restoreTargets, runbookCommand } from '../../scripts/cli/runbooks';
import { newWorkflowId, START_OPTIONS, timeoutMs } from '../../scripts/cli/start';

/** The usage error `fn` throws (exit 2), or fails. */
function usageMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CliError, `expected a CliError, got ${String(err)}`);
    assert.equal(err.exitCode, Exit.usage);
    return err.message;
  }
  assert.fail('expected a usage error');
}

function inputOf(command: string, args: string[]): unknown {
  const runbook = runbookCommand(command)!;
  const { values } = parseCommandLine(args, { ...START_OPTIONS, ...runbook.options });
  return runbook.input(values);
}

describe('CLI argument validation', () => {
  it('maps backup flags to platformBackup input', () => {
    assert.deepEqual(inputOf('backup', []), { components: undefined, skip: undefined });
    assert.deepEqual(inputOf('backup', ['--components', 'postgres,kafka', '--skip', 'clickhouse=down for maintenance', '--no-retention']), {
      components: ['postgres', 'kafka'],
      skip: { clickhouse: 'down for maintenance' },
      retention: false,
    });
    assert.match(usageMessage(() => inputOf('backup', ['--components', 'mysql'])), /^--components \(0\): /);
    assert.match(usageMessage(() => inputOf('backup', ['--skip', 'kafka'])), /^--skip "kafka": expected KEY=VALUE/);
    assert.match(usageMessage(() => inputOf('backup', ['--skip', 'kafka='])), /--skip .*give the reason/);
  });

  it('maps restore flags to restore input and names --target, --backup and --incident-at', () => {
    assert.deepEqual(inputOf('restore', ['--backup', 'latest', '--target', 'postgres:shop=shop_copy', '--target', 'kafka:_copy', '--incident-at', '2026-12-01T10:00:00Z']), {
      backupId: 'latest',
      components: undefined,
      targets: { postgres: { shop: 'shop_copy' }, clickhouse: {}, buckets: {}, kafkaSuffix: '_copy' },
      incidentStartedAt: '2026-12-01T10:00:00Z',
      allowUnsignedBackup: undefined,
    });
    assert.match(usageMessage(() => inputOf('restore', ['--target', 'postgres:shop'])), /^--target "postgres:shop": expected/);
    assert.match(usageMessage(() => inputOf('restore', ['--target', 'mysql:a=b'])), /^--target "mysql:a=b"/);
    assert.match(usageMessage(() => inputOf('restore', ['--target', 'postgres:shop=a', '--target', 'postgres:shop=b'])), /given a target twice/);
    assert.match(usageMessage(() => inputOf('restore', ['--target', 'postgres:shop=bad-name'])), /^--target \(postgres\.shop\): must be a plain identifier/);
    assert.match(usageMessage(() => inputOf('restore', ['--target', 'bucket:platform-data=Bad_Bucket'])), /^--target \(buckets\.platform-data\)/);
    assert.match(usageMessage(() => inputOf('restore', ['--incident-at', 'yesterday'])), /^--incident-at: /);
    assert.match(usageMessage(() => inputOf('restore', ['--backup', ''])), /^--backup: /);
  });

  it('maps roll and health flags', () => {
    assert.deepEqual(inputOf('roll', ['--brokers', '1,2', '--approve-each']), { brokers: [1, 2], approvalPerBroker: true });
    assert.match(usageMessage(() => inputOf('roll', ['--brokers', '1,x'])), /^--brokers \(1\): must be broker ids/);
    assert.deepEqual(inputOf('health', ['--systems', 'kafka']), { systems: ['kafka'] });
    assert.match(usageMessage(() => inputOf('health', ['--systems', 'redis'])), /^--systems/);
  });

  it('maps compact and demo-reset flags, naming the flag at fault', () => {
    assert.deepEqual(inputOf('compact', ['--dry-run', '--systems', 'clickhouse,postgres']), { dryRun: true, systems: ['clickhouse', 'postgres'], stopBy: undefined });
    assert.match(usageMessage(() => inputOf('compact', ['--systems', 'mysql'])), /^--systems/);
    assert.match(usageMessage(() => inputOf('compact', ['--stop-by', 'tonight'])), /^--stop-by/);
    assert.deepEqual(inputOf('demo-reset', ['--force', '--keep', 'kafka']), { dryRun: undefined, force: true, keep: ['kafka'] });
    assert.match(usageMessage(() => inputOf('demo-reset', ['--keep', 'iceberg'])), /^--keep/);
    assert.match(usageMessage(() => inputOf('demo-reset', ['--dry-run', '--force'])), /--dry-run and --force/);
    assert.deepEqual(runbookCommand('compact')!.controls, ['pause', 'resume', 'abort']);
  });

  it('refuses unknown flags, naming them', () => {
    assert.match(usageMessage(() => parseCommandLine(['--bogus'], {})), /Unknown option '--bogus'/);
  });

  it('reads lists, pairs, targets and durations', () => {
    assert.deepEqual(listOf(['a,b', 'c']), ['a', 'b', 'c']);
    assert.equal(listOf(undefined), undefined);
    assert.deepEqual(pairsOf('skip', ['kafka=a=b']), [['kafka', 'a=b']]);
    assert.deepEqual(restoreTargets(['clickhouse:analytics=analytics_copy', 'bucket:platform-data=platform-data-copy']), {
      postgres: {},
      clickhouse: { analytics: 'analytics_copy' },
      buckets: { 'platform-data': 'platform-data-copy' },
    });
    assert.equal(timeoutMs('90'), 90_000);
    assert.equal(timeoutMs('15m'), 900_000);
    assert.equal(timeoutMs('2h'), 7_200_000);
    assert.match(usageMessage(() => timeoutMs('soon')), /^--timeout "soon"/);
    assert.match(newWorkflowId('backup', new Date('2026-12-02T04:30:00.123Z')), /^backup-20261202T043000Z-[0-9a-f]{6}$/);
  });
});

describe('CLI outcomes and exit codes', () => {
  it('maps failure types to exit codes', () => {
    assert.equal(exitCodeOfFailure('InvalidInput'), Exit.usage);
    assert.equal(exitCodeOfFailure('BackupNotFound'), Exit.usage);
    assert.equal(exitCodeOfFailure('TargetRefused'), Exit.refused);
    assert.equal(exitCodeOfFailure('Rejected'), Exit.refused);
    assert.equal(exitCodeOfFailure('ApprovalTimedOut'), Exit.waiting);
    assert.equal(exitCodeOfFailure('VerificationFailed'), Exit.failed);
    assert.equal(exitCodeOfFailure(undefined), Exit.failed);
  });

  it('judges results that returned but failed at their job', () => {
    assert.equal(outcomeOfResult('healthCheck', { healthy: false, summary: ['kafka UNHEALTHY: broker 2 down'] }).exitCode, Exit.failed);
    assert.equal(outcomeOfResult('healthCheck', { healthy: true }).exitCode, Exit.ok);
    assert.equal(outcomeOfResult('kafkaRollingRestart', { outcome: 'aborted', abortedBy: 'carol' }).exitCode, Exit.failed);
    assert.equal(outcomeOfResult('kafkaRollingRestart', { outcome: 'completed' }).exitCode, Exit.ok);
    assert.equal(outcomeOfResult('platformBackup', { backupId: 'x' }).outcome, 'succeeded');
  });
});

describe('CLI output', () => {
  const now = new Date('2026-12-02T05:00:00Z');

  it('writes a progress line for a backup, a restore and a roll', () => {
    assert.equal(
      progressLine('backup', { phase: 'backing up', elapsedMs: 42_000, components: { postgres: { tasks: 1, done: 0, running: ['postgres shop'], bytes: 1_500_000 }, kafka: { tasks: 3, done: 3, running: [], bytes: 500_000 } } }, now),
      'backup: backing up · postgres shop · 3/4 steps · 2.0 MB · 42s elapsed',
    );
    assert.equal(
      progressLine('restore', { phase: 'restoring', running: ['postgres shop'], tasks: 4, tasksDone: 1, bytesDone: 2e9, bytesTotal: 8e9, rto: { elapsedMinutes: 12.5, targetMinutes: 60, projectedFinishAt: '2026-12-02T05:03:00Z' } }, now),
      'restore: restoring · postgres shop · 1/4 steps · 2.0 GB of 8.0 GB · ETA 3m 00s · RTO clock 12.5 min of 60',
    );
    assert.equal(progressLine('roll', { phase: 'restarting', broker: 2, done: [1], remaining: [2, 3], paused: false, elapsedMs: 65_000 }, now), 'roll: restarting · broker 2 · brokers done 1, left 2,3 · 1m 05s elapsed');
    assert.equal(progressLine('health', undefined, now), 'health: starting');
  });

  it('formats sizes, durations and tables', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1_234_567), '1.2 MB');
    assert.equal(formatDuration(3 * 86_400_000 + 4 * 3_600_000), '3d 4h');
    assert.equal(formatDuration(7_500_000), '2h 05m');
    assert.equal(table([['ID', 'STATE'], ['a-long-id', 'complete']]), 'ID         STATE\na-long-id  complete');
  });

  it('prints a usage error as one JSON document with -o json', async () => {
    const writes: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    const originalErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((chunk: string) => writes.push(chunk) > 0) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(['restore', '--target', 'postgres:shop', '-o', 'json'], new Promise(() => undefined));
    } finally {
      process.stdout.write = original;
      process.stderr.write = originalErr;
    }
    assert.equal(code, Exit.usage);
    const doc = JSON.parse(writes.join('')) as { ok: boolean; exitCode: number; error: { kind: string; message: string } };
    assert.deepEqual({ ok: doc.ok, exitCode: doc.exitCode, kind: doc.error.kind }, { ok: false, exitCode: 2, kind: 'usage' });
    assert.match(doc.error.message, /--target/);
  });
});

describe('CLI operator keys', () => {
  const signers = ['# approvers', 'alice namespaces="ballast-approval" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice', 'bob,robert ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob'].join('\n');

  it('finds the principals an allowed-signers file gives a key', () => {
    assert.deepEqual(principalsOf(signers, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice'), ['alice']);
    assert.deepEqual(principalsOf(signers, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob'), ['bob', 'robert']);
    assert.deepEqual(principalsOf(signers, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMallory'), []);
  });

  it("signs with the agent's listed key, and refuses when there is none", () => {
    const mallory = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMallory', source: 'agent' };
    const bob = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob', source: 'agent' };
    assert.equal(chooseKey([mallory, bob], signers), bob);
    assert.equal(chooseKey([mallory], signers), mallory);
    assert.match(usageMessage(() => chooseKey([], signers)), /pass --key PATH/);
  });
});

describe('following a run (a fake handle: the point is the loop)', () => {
  const quiet = new Output('json', process.stdout, { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream);
  const never = new Promise<never>(() => undefined);
  const fakeHandle = (queries: Record<string, unknown>) =>
    ({
      workflowId: 'cli-fake',
      result: () => never,
      query: (name: string) => (name in queries ? Promise.resolve(queries[name]) : never),
    }) as unknown as WorkflowHandle;
  const options = { command: 'restore', workflowType: 'restore', out: quiet, client: {} as Client, pollMs: 10 };

  it('stops following at Ctrl-C even while no worker answers its queries', async () => {
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    setTimeout(() => stop(), 50);
    const started = Date.now();
    const ended = await follow(fakeHandle({}), { ...options, throughApproval: false, stopped });
    assert.deepEqual(ended, { outcome: 'stopped', exitCode: Exit.waiting });
    assert.ok(Date.now() - started < 2000);
  });

  it('returns exit 4 with the plan when the run waits for an approval, unless told to follow through it', async () => {
    const approval = { what: 'a restore', plan: { hash: 'sha256:ab', actions: ['rename database shop'] }, workflowId: 'cli-fake', runId: 'r', requester: 'carol', since: '2026-12-02T05:00:00Z', unsignedAllowed: false, fourEyes: true, timeoutMinutes: 60 };
    const handle = fakeHandle({ status: { phase: 'awaiting approval' }, approval });
    const ended = await follow(handle, { ...options, throughApproval: false, stopped: never });
    assert.equal(ended.exitCode, Exit.waiting);
    assert.equal(ended.outcome, 'waiting for approval');
    assert.deepEqual(ended.approval, approval);
    const through = await follow(handle, { ...options, throughApproval: true, stopped: never, timeoutMs: 100 });
    assert.equal(through.outcome, 'timed out');
  });
});
