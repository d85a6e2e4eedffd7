/**
 * Rolling restart: kafkaRollingRestart of the three brokers against a plain loop that restarts
 * the same brokers in the same order and polls `kafka-topics --under-replicated-partitions`.
 */
import type { Client } from '@temporalio/client';
import type { RollReport } from '../../contracts/rollTypes';
import { runKafkaTool } from '../../localStack';
import { spawnWorker } from '../../localStack/workerProcess';
import type { LoadedConfig } from '../../workers/config';
import { run, timed } from './run';
import { LIMITS, atMost, fmtRatio, fmtSeconds, ratio, type Verdict } from './targets';

/** Under-replicated partitions as Kafka's own tool lists them (one line each). */
async function urpByKafkaTool(loaded: LoadedConfig): Promise<number> {
  const bootstrap = loaded.config.kafka.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  const out = await runKafkaTool('org.apache.kafka.tools.TopicCommand', ['--bootstrap-server', bootstrap, '--describe', '--under-replicated-partitions']);
  return out.split('\n').filter((l) => l.trim()).length;
}

/**
 * The plain loop an operator would script: for each broker, restart it, then poll Kafka's own
 * topic tool until no partition is under-replicated.
 */
async function shellLoopRoll(loaded: LoadedConfig, order: number[]): Promise<number> {
  const { ms } = await timed(async () => {
    for (const id of order) {
      await run('bash', ['scripts/stack', 'broker', 'restart', String(id)], { ...process.env, BALLAST_CONFIG: loaded.path });
      while ((await urpByKafkaTool(loaded)) > 0) await new Promise((r) => setTimeout(r, 1000));
    }
  });
  return ms;
}

export async function benchRoll(loaded: LoadedConfig, client: Client, repeats: number, say: (line: string) => void): Promise<Verdict> {
  console.log('\n[roll] rolling restart of the three brokers ...');
  const worker = await spawnWorker(loaded.path);
  try {
    const rollRuns: { ms: number; report: RollReport }[] = [];
    const loops: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const r = await timed(
        () =>
          client.workflow.execute('kafkaRollingRestart', {
            taskQueue: loaded.config.temporal.taskQueue,
            workflowId: `bench-roll-${Date.now()}`,
            args: [{}],
          }) as Promise<RollReport>,
      );
      rollRuns.push({ ms: r.ms, report: r.value });
      loops.push(await shellLoopRoll(loaded, r.value.order));
    }
    const best = rollRuns.reduce((a, b) => (b.ms < a.ms ? b : a));
    const bestLoop = Math.min(...loops);
    const lost = rollRuns.reduce((n, r) => n + (r.report.canary?.ackedMissing ?? 0), 0);
    const election = best.report.restarted.reduce((n, s) => n + (s.electionMs ?? 0), 0);
    say(`[roll] order ${best.report.order.join(', ')} (controller last); shell loop (restart + kafka-topics --under-replicated-partitions until empty): ${fmtSeconds(bestLoop)}   kafkaRollingRestart (wall): ${fmtSeconds(best.ms)}   ratio ${fmtRatio(ratio(best.ms, bestLoop))}`);
    say(`[roll]   every run: kafkaRollingRestart ${rollRuns.map((r) => fmtSeconds(r.ms)).join(', ')}; shell loop ${loops.map(fmtSeconds).join(', ')}`);
    const steps = best.report.restarted.map(
      (s) => `${s.brokerId}: safety ${fmtSeconds(s.safetyWaitMs)}, restart ${fmtSeconds(s.restartMs)}, replication ${fmtSeconds(s.replicationMs)}, election ${s.electionMs === undefined ? '-' : fmtSeconds(s.electionMs)}`,
    );
    const inSteps = best.report.restarted.reduce((n, s) => n + Date.parse(s.finishedAt) - Date.parse(s.startedAt), 0);
    say(`[roll]   per broker: ${steps.join('; ')}; outside the broker steps (pre-flight, canary, report): ${fmtSeconds(best.ms - inSteps)}`);
    say(
      `[roll]   of which preferred leader elections: ${fmtSeconds(election)}; canary: ${best.report.canary?.acknowledged ?? 0} acknowledged, max produce latency ${best.report.canary?.maxLatencyMs ?? '-'} ms, ${best.report.canary?.retries ?? 0} retried, acknowledged messages lost over all runs: ${lost}`,
    );
    return atMost('rolling restart vs restart loop', ratio(best.ms, bestLoop), LIMITS.rollRatio, fmtRatio, lost ? `${lost} acknowledged messages lost` : undefined);
  } finally {
    await worker.stop();
  }
}
