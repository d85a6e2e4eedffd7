/**
 * The kill loop of the worker-kill tests: two barrier workers (test/helpers/barrierWorker.ts)
 * share the runs, every first attempt of an activity is held at the barrier, and the worker
 * holding it is SIGKILLed at once while a replacement starts, so every activity boundary is a
 * kill point and there is always a live worker to take the step up.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BarrierRecord } from './barrierWorker';
import { workflowBundle } from './workflowEnv';
import { spawnWorker, type WorkerProcess } from './workerProcess';

export interface BarrierKills {
  /** When each killed worker (by pid) was killed, epoch ms. */
  killedAt: Map<number, number>;
  /** Every attempt the barrier recorded, per `<workflowId>.<activityId>`, in attempt order. */
  attempts(): Map<string, BarrierRecord[]>;
  /**
   * Every attempt a kill cut short, with how long after the kill the next attempt started. An
   * attempt whose worker was killed only after the next attempt began had ended on its own.
   */
  resumes(): { name: string; type: string; attempt: number; ms: number }[];
  /** Stops killing, then ends every worker it started and removes the barrier's folder. */
  stop(): Promise<void>;
}

export async function startBarrierKills(configPath: string): Promise<BarrierKills> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ballast-barrier-'));
  // One bundle for every worker: bundling in each would slow every replacement.
  const bundleFile = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundleFile, (await workflowBundle()).code);
  const workers = new Set<WorkerProcess>();
  const killedAt = new Map<number, number>();
  const handled = new Set<string>();
  const replacements: Promise<void>[] = [];

  const startWorker = async () => {
    const worker = await spawnWorker(configPath, {
      command: [process.execPath, '--import', 'tsx', 'test/helpers/barrierWorker.ts'],
      env: { BALLAST_TEST_BARRIER_DIR: dir, BALLAST_TEST_WORKFLOW_BUNDLE: bundleFile },
    });
    workers.add(worker);
    void worker.child.once('exit', () => workers.delete(worker));
  };
  const readRecord = (file: string) => JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as BarrierRecord;

  /** Kills the worker behind each new held first attempt (unless it is dead already) and starts a replacement. */
  const killHolders = () => {
    for (const file of readdirSync(dir)) {
      if (!file.startsWith('attempt.') || !file.endsWith('.1.json') || handled.has(file)) continue;
      handled.add(file);
      const { pid } = readRecord(file);
      if (killedAt.has(pid)) continue;
      killedAt.set(pid, Date.now());
      process.kill(pid, 'SIGKILL');
      replacements.push(startWorker());
    }
  };

  await Promise.all([startWorker(), startWorker()]);
  const watching = setInterval(killHolders, 100);

  const attempts = () => {
    const byActivity = new Map<string, BarrierRecord[]>();
    for (const file of readdirSync(dir).filter((f) => f.startsWith('attempt.'))) {
      const record = readRecord(file);
      const name = `${record.workflowId}.${record.activityId}`;
      byActivity.set(name, [...(byActivity.get(name) ?? []), record].sort((x, y) => x.attempt - y.attempt));
    }
    return byActivity;
  };

  return {
    killedAt,
    attempts,
    resumes() {
      const found: { name: string; type: string; attempt: number; ms: number }[] = [];
      for (const [name, records] of attempts()) {
        for (let i = 0; i + 1 < records.length; i++) {
          const killed = killedAt.get(records[i]!.pid);
          if (killed === undefined || killed > records[i + 1]!.at) continue;
          found.push({ name, type: records[i]!.activityType, attempt: records[i + 1]!.attempt, ms: records[i + 1]!.at - killed });
        }
      }
      return found;
    },
    async stop() {
      clearInterval(watching);
      await Promise.allSettled(replacements);
      await Promise.allSettled([...workers].map((w) => w.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
