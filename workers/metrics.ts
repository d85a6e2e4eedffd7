/**
 * ballast's Prometheus metrics, named as velero names its own (`ballast_backup_attempt_total`,
 * `ballast_backup_success_total`, `ballast_backup_last_successful_timestamp`, ...). Runs report
 * their start and end through the workflow sink of workflows/runMetrics.ts; what must survive a
 * worker restart (the RPO exposure, the approvals waiting) is read from the bucket and from
 * Temporal when scraped. prom-client keeps the series and writes the exposition format, and adds
 * the worker process's own figures (memory, CPU, event-loop lag, GC).
 */
import { createServer, type Server } from 'node:http';
import type { InjectedSinks } from '@temporalio/worker';
import { RUNBOOKS, runbookOf, type RunbookName } from '../contracts/runbooks';
import type { RestoreReport } from '../contracts/restoreTypes';
import type { RollReport } from '../contracts/rollTypes';
import type { RunEnd, RunMetricsSinks } from '../workflows/runMetrics';
import type { WaitingRun } from './approvalsWaiting';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** From a health check's seconds to a restore's hours. */
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800];
const ROLL_OUTCOMES = ['completed', 'aborted', 'halted'] as const;
/** The bucket is listed at most this often, however often Prometheus scrapes. */
const BUCKET_CACHE_MS = 30_000;
const SOURCE_TIMEOUT_MS = 5000;

/** Where the metrics read what outlives a worker. */
export interface MetricsSources {
  /** The backup bucket: the label of the backup size and RPO exposure, which exist only once a complete backup is known. */
  backupBucket: string;
  newestCompleteBackup(): Promise<{ finishedAt?: string; consistencyPoint?: string; bytes: number } | undefined>;
  approvalsWaiting(): Promise<WaitingRun[]>;
  /** The newest restore or drill report in the bucket (reports/restores/, reports/drills/). */
  lastRestoreReport(kind: 'restore' | 'drill'): Promise<Pick<RestoreReport, 'kind' | 'rto'> | undefined>;
}

interface RunbookMetrics {
  attempts: Counter;
  successes: Counter;
  failures: Counter;
  lastSuccess: Gauge;
  /** What lastSuccess holds: prom-client's gauges are read back only asynchronously. */
  lastSuccessAt: number;
  duration: Histogram;
}

export interface BallastMetrics {
  /** For Worker.create's `sinks`: the runs' starts and ends. */
  sinks: InjectedSinks<RunMetricsSinks>;
  /** Records one run's end (the sink calls this; tests too). */
  record(workflowType: string, durationSeconds: number, end: RunEnd): void;
  render(): Promise<string>;
}

/** A run that returned can still have failed at its job: an unhealthy system, a roll that did not complete. */
function succeeded(name: RunbookName, end: RunEnd): boolean {
  if (!end.ok) return false;
  const r = (end.result ?? {}) as { healthy?: boolean; outcome?: string };
  if (name === 'health') return r.healthy !== false;
  if (name === 'roll') return r.outcome === undefined || r.outcome === 'completed';
  return true;
}

/** The report a run's result or failure carries (a failed restore and a halted roll put theirs in the failure's details). */
function reportOf<T>(end: RunEnd, has: (v: Record<string, unknown>) => boolean): T | undefined {
  const candidates = end.ok ? [end.result, (end.result as { report?: unknown } | undefined)?.report] : [...end.details, ...end.details.map((d) => (d as { report?: unknown } | undefined)?.report)];
  return candidates.find((c): c is T => typeof c === 'object' && c !== null && has(c as Record<string, unknown>)) as T | undefined;
}

export function createBallastMetrics(sources: MetricsSources, now: () => Date = () => new Date()): BallastMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  const runbooks = new Map<RunbookName, RunbookMetrics>();
  // Unlabelled counters and histograms are written at 0 from the start, so rate() and absent()
  // behave before the first run.
  for (const { name, workflowType } of RUNBOOKS) {
    runbooks.set(name, {
      attempts: counter(`ballast_${name}_attempt_total`, `${workflowType} runs started (on their own, not as a child) on this worker`),
      successes: counter(`ballast_${name}_success_total`, `${workflowType} runs that succeeded`),
      failures: counter(`ballast_${name}_failure_total`, `${workflowType} runs that failed, were refused, rejected or cancelled, or (health, roll) did not get a healthy or completed outcome`),
      lastSuccess: gauge(`ballast_${name}_last_successful_timestamp`, `Unix time of the last successful ${workflowType} run${name === 'backup' ? ' (at least the newest complete backup in the bucket)' : ''}`),
      lastSuccessAt: 0,
      duration: new Histogram({ name: `ballast_${name}_duration_seconds`, help: `${workflowType} run durations, start to end`, buckets: DURATION_BUCKETS, registers }),
    });
  }
  const setLastSuccess = (m: RunbookMetrics, at: number) => {
    m.lastSuccessAt = at;
    m.lastSuccess.set(at);
  };
  // Labelled, so that they have no series (rather than a misleading 0) until a backup is known.
  const bucket = { bucket: sources.backupBucket };
  const backupBytes = gauge('ballast_backup_size_bytes', 'Bytes of the newest complete backup (or of the last successful one on this worker)', ['bucket']);
  const rpoExposure = gauge('ballast_backup_rpo_exposure_seconds', "Seconds since the newest complete backup's consistency point: the data a restore now would lose", ['bucket']);
  const setRto = (report: Pick<RestoreReport, 'kind' | 'rto'>) => {
    rto.set({ kind: report.kind }, report.rto.measuredMinutes * 60);
    rtoTarget.set({ kind: report.kind }, report.rto.targetMinutes * 60);
    rtoMet.set({ kind: report.kind }, report.rto.met ? 1 : 0);
  };
  const rto = gauge('ballast_restore_rto_seconds', 'Measured RTO of the last restore or drill (kind), incident start to verified restore', ['kind']);
  const rtoTarget = gauge('ballast_restore_rto_target_seconds', 'The RTO target that restore or drill was measured against', ['kind']);
  const rtoMet = gauge('ballast_restore_rto_met', '1 when the last restore or drill (kind) met its RTO target, else 0', ['kind']);
  const rollOutcomes = counter('ballast_roll_outcome_total', 'Kafka rolling restarts by outcome', ['outcome']);
  for (const outcome of ROLL_OUTCOMES) rollOutcomes.inc({ outcome }, 0);
  const canaryLost = gauge('ballast_roll_canary_lost_messages', 'Acknowledged canary messages missing after the last roll (must be 0)');
  const canarySent = gauge('ballast_roll_canary_sent_messages', 'Canary messages the last roll sent');
  const reclaimed = counter('ballast_compaction_reclaimed_bytes_total', 'Bytes reclaimed by compaction runs (their reports\' bytesReclaimed)');
  const approvalsWaiting = gauge('ballast_approvals_waiting', 'Runs waiting for an approval, per runbook', ['runbook']);
  const approvalWait = gauge('ballast_approval_wait_seconds', 'How long each run now waiting for an approval has waited', ['runbook', 'workflow_id']);
  const oldestApproval = gauge('ballast_approval_oldest_wait_seconds', 'The longest wait of any run now waiting for an approval (0: none)');
  const sourceErrors = counter('ballast_metrics_source_errors_total', 'Scrapes that could not read a source (bucket, temporal); the gauges it feeds keep their last value', ['source']);
  for (const source of ['bucket', 'temporal']) sourceErrors.inc({ source }, 0);

  const seconds = (iso: string) => new Date(iso).getTime() / 1000;
  let newest: { at: number; value: Awaited<ReturnType<MetricsSources['newestCompleteBackup']>>; reports: (Pick<RestoreReport, 'kind' | 'rto'> | undefined)[] } | undefined;

  const record = (workflowType: string, durationSeconds: number, end: RunEnd) => {
    const name = runbookOf(workflowType);
    if (!name) return;
    const m = runbooks.get(name)!;
    m.duration.observe(durationSeconds);
    if (succeeded(name, end)) {
      m.successes.inc();
      setLastSuccess(m, now().getTime() / 1000);
    } else {
      m.failures.inc();
    }
    if (name === 'backup' && end.ok) {
      const r = end.result as { totals?: { bytes?: number }; complete?: boolean; consistencyPoint?: string; finishedAt?: string };
      if (r.complete !== false && typeof r.totals?.bytes === 'number') {
        backupBytes.set(bucket, r.totals.bytes);
        newest = undefined;
      }
    }
    if (name === 'compaction' && end.ok) {
      const bytes = (end.result as { bytesReclaimed?: number } | undefined)?.bytesReclaimed;
      if (typeof bytes === 'number' && bytes > 0) reclaimed.inc(bytes);
    }
    if (name === 'restore' || name === 'drill') {
      const report = reportOf<RestoreReport>(end, (v) => typeof v.rto === 'object' && typeof v.kind === 'string');
      if (report) setRto(report);
    }
    if (name === 'roll') {
      const report = reportOf<RollReport>(end, (v) => typeof v.outcome === 'string' && Array.isArray(v.restarted));
      rollOutcomes.inc({ outcome: report?.outcome ?? 'halted' });
      if (report?.canary) {
        canaryLost.set(report.canary.ackedMissing);
        canarySent.set(report.canary.sent);
      }
    }
  };

  const withTimeout = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), SOURCE_TIMEOUT_MS).unref())]);

  async function refreshBucket(): Promise<void> {
    const t = now().getTime();
    if (!newest || t - newest.at > BUCKET_CACHE_MS) {
      const [value, ...reports] = await withTimeout(Promise.all([sources.newestCompleteBackup(), sources.lastRestoreReport('restore'), sources.lastRestoreReport('drill')]));
      newest = { at: t, value, reports };
      // The bucket's reports hold every worker's restores and drills, and outlive a restart.
      for (const report of reports) if (report?.rto) setRto(report);
    }
    const b = newest.value;
    if (!b) return;
    if (b.consistencyPoint) rpoExposure.set(bucket, Math.max(0, Math.round(t / 1000 - seconds(b.consistencyPoint))));
    backupBytes.set(bucket, b.bytes);
    const backup = runbooks.get('backup')!;
    if (b.finishedAt && seconds(b.finishedAt) > backup.lastSuccessAt) setLastSuccess(backup, seconds(b.finishedAt));
  }

  async function refreshApprovals(): Promise<void> {
    const waiting = await withTimeout(sources.approvalsWaiting());
    approvalsWaiting.reset();
    approvalWait.reset();
    const perRunbook = new Map<string, number>(RUNBOOKS.map(({ name }) => [name, 0]));
    for (const w of waiting) {
      const runbook = runbookOf(w.workflowType) ?? w.workflowType;
      perRunbook.set(runbook, (perRunbook.get(runbook) ?? 0) + 1);
      approvalWait.set({ runbook, workflow_id: w.workflowId }, w.waitingSeconds);
    }
    for (const [runbook, count] of perRunbook) approvalsWaiting.set({ runbook }, count);
    oldestApproval.set(Math.max(0, ...waiting.map((w) => w.waitingSeconds)));
  }

  return {
    record,
    sinks: {
      runMetrics: {
        started: { fn: (info) => void runbooks.get(runbookOf(info.workflowType)!)?.attempts.inc(), callDuringReplay: false },
        finished: { fn: (info, end) => record(info.workflowType, (now().getTime() - new Date(info.runStartTime).getTime()) / 1000, end), callDuringReplay: false },
      },
    },
    async render() {
      await Promise.all([refreshBucket().catch(() => sourceErrors.inc({ source: 'bucket' })), refreshApprovals().catch(() => sourceErrors.inc({ source: 'temporal' }))]);
      return registry.metrics();
    },
  };
}

/**
 * GET /metrics: ballast's metrics, then the Temporal SDK's (its runtime's exporter, read back from
 * `sdkMetricsUrl`), so Prometheus scrapes one target.
 */
export function serveMetrics(options: { host: string; port: number; metrics: BallastMetrics; sdkMetricsUrl?: string }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('ballast serves GET /metrics\n');
      return;
    }
    void (async () => {
      try {
        let body = await options.metrics.render();
        if (options.sdkMetricsUrl) {
          body += await fetch(options.sdkMetricsUrl, { signal: AbortSignal.timeout(SOURCE_TIMEOUT_MS) })
            .then((r) => r.text())
            .catch((err: Error) => `# the Temporal SDK's metrics at ${options.sdkMetricsUrl} did not answer: ${err.message}\n`);
        }
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
      }
    })();
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics on ${options.host}:${options.port} (metrics.port): ${err.message}`)));
    server.listen(options.port, options.host, () => resolve(server));
  });
}
