import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../workers/config';
import { createBallastMetrics, type MetricsSources } from '../../workers/metrics';
import { parse } from 'yaml';
import { minimalConfig as minimal } from '../helpers/minimalConfig';

/** The value of one exposition line, e.g. `ballast_backup_success_total` or `x{kind="drill"}`. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const now = new Date('2026-12-02T05:00:00Z');
const sources = (over: Partial<MetricsSources> = {}): MetricsSources => ({
  backupBucket: 'ballast-backups',
  newestCompleteBackup: async () => ({ finishedAt: '2026-12-02T02:10:00Z', consistencyPoint: '2026-12-02T02:00:00Z', bytes: 1234 }),
  approvalsWaiting: async () => [],
  lastRestoreReport: async (kind) => (kind === 'drill' ? { kind: 'drill', rto: { measuredMinutes: 30, targetMinutes: 60, met: true } } : undefined),
  ...over,
});

describe('ballast metrics', () => {
  it('starts every runbook at zero and reads the RPO exposure and last backup from the bucket', async () => {
    const text = await createBallastMetrics(sources(), () => now).render();
    for (const name of ['health', 'backup', 'restore', 'drill', 'roll', 'compaction', 'demo_reset']) {
      for (const kind of ['attempt', 'success', 'failure']) assert.equal(valueOf(text, `ballast_${name}_${kind}_total`), 0, `ballast_${name}_${kind}_total`);
    }
    assert.equal(valueOf(text, 'ballast_backup_rpo_exposure_seconds{bucket="ballast-backups"}'), 3 * 3600);
    assert.equal(valueOf(text, 'ballast_backup_last_successful_timestamp'), Date.parse('2026-12-02T02:10:00Z') / 1000);
    assert.equal(valueOf(text, 'ballast_backup_size_bytes{bucket="ballast-backups"}'), 1234);
    assert.equal(valueOf(text, 'ballast_compaction_reclaimed_bytes_total'), 0);
    assert.equal(valueOf(text, 'ballast_roll_outcome_total{outcome="halted"}'), 0);
    assert.equal(valueOf(text, 'ballast_approval_oldest_wait_seconds'), 0);
    assert.equal(valueOf(text, 'ballast_restore_rto_seconds{kind="drill"}'), 1800, "the last drill's RTO, from its report in the bucket");
    assert.equal(valueOf(text, 'ballast_restore_rto_met{kind="drill"}'), 1);
    assert.equal(valueOf(text, 'ballast_restore_rto_seconds{kind="restore"}'), undefined);
    assert.equal(valueOf(text, 'ballast_backup_duration_seconds_count'), 0);
    assert.ok((valueOf(text, 'process_resident_memory_bytes') ?? 0) > 0, "the worker process's own figures are served too");
  });

  it('counts outcomes: an unhealthy check and a halted roll are failures; RTO and canary figures come from the reports', async () => {
    const metrics = createBallastMetrics(sources({ lastRestoreReport: async () => undefined }), () => now);
    metrics.record('platformBackup', 42, { ok: true, result: { backupId: 'b', complete: true, totals: { bytes: 999 } } });
    metrics.record('healthCheck', 1, { ok: true, result: { healthy: false } });
    metrics.record('drDrill', 600, { ok: true, result: { report: { kind: 'drill', rto: { measuredMinutes: 90, targetMinutes: 60, met: false } } } });
    const roll = { outcome: 'halted', restarted: [], canary: { sent: 500, ackedMissing: 0 } };
    metrics.record('kafkaRollingRestart', 300, { ok: false, failureType: 'RollHalted', message: 'halted', details: [roll] });
    metrics.record('someOtherWorkflow', 1, { ok: true, result: {} });
    metrics.record('compaction', 120, { ok: true, result: { outcome: 'completed', bytesReclaimed: 4096 } });
    const text = await metrics.render();
    assert.equal(valueOf(text, 'ballast_backup_success_total'), 1);
    assert.equal(valueOf(text, 'ballast_backup_last_successful_timestamp'), now.getTime() / 1000);
    assert.equal(valueOf(text, 'ballast_backup_duration_seconds_count'), 1);
    assert.equal(valueOf(text, 'ballast_backup_duration_seconds_bucket{le="60"}'), 1);
    assert.equal(valueOf(text, 'ballast_health_failure_total'), 1);
    assert.equal(valueOf(text, 'ballast_drill_success_total'), 1);
    assert.equal(valueOf(text, 'ballast_restore_rto_seconds{kind="drill"}'), 5400);
    assert.equal(valueOf(text, 'ballast_restore_rto_target_seconds{kind="drill"}'), 3600);
    assert.equal(valueOf(text, 'ballast_restore_rto_met{kind="drill"}'), 0);
    assert.equal(valueOf(text, 'ballast_roll_failure_total'), 1);
    assert.equal(valueOf(text, 'ballast_roll_outcome_total{outcome="halted"}'), 1);
    assert.equal(valueOf(text, 'ballast_roll_canary_sent_messages'), 500);
    assert.equal(valueOf(text, 'ballast_roll_canary_lost_messages'), 0);
    assert.equal(valueOf(text, 'ballast_compaction_reclaimed_bytes_total'), 4096);
    assert.equal(valueOf(text, 'ballast_compaction_success_total'), 1);
  });

  it('lists the runs waiting for approval, and counts a source that fails without failing the scrape', async () => {
    const waiting = async () => [{ workflowId: 'restore-1', workflowType: 'restore', planHash: 'sha256:x', what: 'a restore', since: '2026-12-02T04:20:00Z', waitingSeconds: 2400 }];
    const failing = async (): Promise<undefined> => {
      throw new Error('bucket down');
    };
    const text = await createBallastMetrics(sources({ approvalsWaiting: waiting, newestCompleteBackup: failing }), () => now).render();
    assert.equal(valueOf(text, 'ballast_approvals_waiting{runbook="restore"}'), 1);
    assert.equal(valueOf(text, 'ballast_approvals_waiting{runbook="drill"}'), 0);
    assert.equal(valueOf(text, 'ballast_approval_wait_seconds{runbook="restore",workflow_id="restore-1"}'), 2400);
    assert.equal(valueOf(text, 'ballast_approval_oldest_wait_seconds'), 2400);
    assert.equal(valueOf(text, 'ballast_metrics_source_errors_total{source="bucket"}'), 1);
    assert.equal(valueOf(text, 'ballast_backup_rpo_exposure_seconds{bucket="ballast-backups"}'), undefined);
  });
});

describe('the example alert rules', () => {
  it('parse, and name only metrics the worker serves', async () => {
    const text = readFileSync(path.join(__dirname, '../../workers/alerts.example.yml'), 'utf8');
    const rules = (parse(text) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    assert.ok(rules.some((r) => r.alert === 'BallastNoSuccessfulBackup' && r.expr.includes('26 * 3600')));
    assert.ok(rules.some((r) => r.alert === 'BallastApprovalWaiting' && r.expr.includes('30 * 60')));
    assert.ok(rules.some((r) => r.alert === 'BallastDrillRtoBreached'));
    const served = new Set(
      (await createBallastMetrics(sources(), () => now).render())
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]!),
    );
    for (const name of new Set(text.match(/ballast_[a-z_]+/g))) assert.ok(served.has(name), `${name} is served`);
  });
});

describe('the metrics config', () => {

  it('serves nothing by default, on loopback when a port is set, and refuses one port for both exporters', () => {
    assert.deepEqual(parseConfig(minimal).metrics, { host: '127.0.0.1' });
    assert.deepEqual(parseConfig({ ...minimal, metrics: { port: 9464, sdkPort: 9465 } }).metrics, { port: 9464, sdkPort: 9465, host: '127.0.0.1' });
    assert.throws(() => parseConfig({ ...minimal, metrics: { port: 9464, sdkPort: 9464 } }, 'test.yaml'), (err: ConfigError) => err.problems.some((p) => p.startsWith('metrics.sdkPort: 9464 is also metrics.port')));
    assert.throws(() => parseConfig({ ...minimal, temporal: { webUiUrl: 'http://user:secret@ui:8233' } }, 'test.yaml'), (err: ConfigError) => err.problems.some((p) => p.startsWith('temporal.webUiUrl')));
  });
});
