import { runProcess, type ProcessResult } from '../../common/process';
import { POLL_MS, activityContext } from './heartbeat';

/** Output kept from a command, for error messages (the end of it). */
const OUTPUT_LIMIT = 64 * 1024;

function keepTail(output: string): string {
  return output.length > OUTPUT_LIMIT ? output.slice(output.length - OUTPUT_LIMIT) : output;
}

/**
 * Runs argv[0] with argv[1..] as its arguments (no shell), heartbeating while it runs; on timeout
 * or activity cancellation it is sent SIGTERM, then SIGKILL five seconds later.
 */
export async function runArgv(argv: string[], timeoutMs: number, heartbeat: () => void): Promise<ProcessResult> {
  const [program, ...args] = argv;
  if (!program) throw new Error('empty command');
  const beat = setInterval(heartbeat, POLL_MS);
  try {
    const result = await runProcess(program, args, { timeoutMs, cancelSignal: activityContext()?.cancellationSignal });
    return { ...result, stdout: keepTail(result.stdout), stderr: keepTail(result.stderr) };
  } finally {
    clearInterval(beat);
  }
}
