import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from './paths';

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  /** Kills the worker process outright, as a crash or an OOM kill would. */
  kill(): Promise<void>;
  /** Asks for a graceful shutdown (SIGTERM) and waits for the exit; fails if it takes longer than timeoutMs. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Starts the real worker process the way `npm start` does (scripts/worker, which execs node, so
 * the pid is node's) and waits until it polls. It is started with child_process rather than
 * activities/common/process.ts: callers need its pid, a SIGTERM to stop it gracefully and its
 * output as it comes, which startStreamingProcess does not give.
 */
export async function spawnWorker(
  configFile: string,
  /** Another entry point than scripts/worker (a test's worker with extra interceptors), and its environment. */
  options: { command?: [string, ...string[]]; env?: Record<string, string> } = {},
): Promise<WorkerProcess> {
  const [command, ...args] = options.command ?? ['bash', 'scripts/worker'];
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env, BALLAST_CONFIG: configFile, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
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
    async stop(timeoutMs = 60_000) {
      child.kill('SIGTERM');
      let forced = false;
      const timer = setTimeout(() => {
        forced = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      // A worker that ignores SIGTERM would hang every deploy: fail loudly, with its last words.
      if (forced) throw new Error(`the worker did not exit within ${timeoutMs / 1000} s of SIGTERM; its output ends:\n${output.slice(-4000)}`);
      return code;
    },
  };
}
