/**
 * Workflow interceptor that tells the worker's metrics (workers/metrics.ts) when a runbook starts
 * and how it ended, through a sink: sink calls are not commands, so no history changes and
 * recorded histories still replay, and a replayed run is not counted twice. Only runs started
 * on their own count: a drill's restore or a backup's pre-flight check is part of its parent.
 */
import { proxySinks, workflowInfo, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** How a run ended, as the metrics read it: its result, or its failure's type and details. */
export type RunEnd = { ok: true; result: unknown } | { ok: false; failureType?: string; message: string; details: unknown[] };

export interface RunMetricsSinks extends Sinks {
  runMetrics: {
    started(): void;
    finished(end: RunEnd): void;
  };
}

const { runMetrics } = proxySinks<RunMetricsSinks>();

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        if (workflowInfo().parent) return next(input);
        runMetrics.started();
        try {
          const result = await next(input);
          runMetrics.finished({ ok: true, result });
          return result;
        } catch (err) {
          runMetrics.finished({ ok: false, ...failureOf(err) });
          throw err;
        }
      },
    },
  ],
});

/** The plain parts of a failure (an ApplicationFailure's type and details; a child's cause). */
function failureOf(err: unknown): { failureType?: string; message: string; details: unknown[] } {
  const e = err as { type?: unknown; message?: unknown; details?: unknown; cause?: { type?: unknown; details?: unknown } };
  const type = typeof e.type === 'string' ? e.type : typeof e.cause?.type === 'string' ? e.cause.type : undefined;
  const details = Array.isArray(e.details) ? e.details : Array.isArray(e.cause?.details) ? e.cause.details : [];
  return { failureType: type, message: typeof e.message === 'string' ? e.message : String(err), details };
}
