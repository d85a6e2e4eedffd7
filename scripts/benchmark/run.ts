import { describeCommand, outputTail, runProcess } from '../../activities/common/process';

/** Runs a program to its end; fails, quoting the end of its stderr, unless it exits 0. */
export async function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  const result = await runProcess(command, args, { env });
  if (result.failed) {
    const how = result.signal ?? `exit ${result.exitCode}`;
    throw new Error(`${describeCommand([command, ...args])} failed (${how}): ${outputTail(result.stderr)}`);
  }
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}
