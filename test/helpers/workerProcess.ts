import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { stackDir } from '../../scripts/localStack/paths';
import { loadConfig, type LoadedConfig } from '../../workers/config';

const repoRoot = path.resolve(__dirname, '../..');

/**
 * Writes a copy of ballast.yaml for one test, with its own task queue and schedule id (so it
 * never takes a running `npm start` worker's tasks or changes its schedule) and secret paths made
 * absolute, since the copy lives elsewhere.
 */
export function writeTestConfig(changes: { backup?: Record<string, unknown> } = {}): LoadedConfig {
  const raw = parse(readFileSync(path.join(repoRoot, 'ballast.yaml'), 'utf8')) as Record<string, any>;
  const id = randomUUID().slice(0, 8);
  raw.temporal.taskQueue = `ballast-test-${id}`;
  raw.backup = { ...raw.backup, ...changes.backup, schedule: { ...raw.backup?.schedule, scheduleId: `ballast-test-schedule-${id}` } };
  for (const section of [raw.postgres, raw.clickhouse, raw.objectStore, raw.temporal]) {
    for (const value of Object.values(section ?? {})) {
      if (value && typeof value === 'object' && 'file' in value) {
        (value as { file: string }).file = path.resolve(repoRoot, (value as { file: string }).file);
      }
    }
  }
  const dir = path.join(stackDir, 'test-configs');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `ballast-${id}.yaml`);
  writeFileSync(file, stringify(raw));
  return loadConfig(file);
}

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Kills the worker process outright, as a crash or an OOM kill would. */
  kill(): Promise<void>;
  /** Asks for a graceful shutdown (SIGTERM) and waits for the exit. */
  stop(): Promise<number | null>;
}

/** Starts the real worker process (workers/main.ts) and waits until it polls. */
export async function spawnWorker(configFile: string): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, BALLAST_CONFIG: configFile, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes("state: 'RUNNING'")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before polling:\n${output}`));
    });
  });
  return {
    child,
    output: () => output,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
