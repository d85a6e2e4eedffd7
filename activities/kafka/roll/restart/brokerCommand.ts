import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../../../../contracts/config';
import { Failure } from '../../../../contracts/failures';
import { describeCommand, type ProcessResult } from '../../../common/process';
import { brokerOf } from '../brokerInput';
import { heartbeatIfInActivity } from '../heartbeat';
import { runArgv } from '../runArgv';
import { brokerTimeout } from '../timeouts';

/** The argv the command and kubernetes backends run for one broker; undefined for the local backend. */
export interface RestartArgv {
  backend: 'command' | 'kubernetes';
  /** Takes the broker down (command: restarts it as a whole). */
  stop: string[];
  /** Waits for it to be up again (kubernetes only). */
  start?: string[];
}

function substitute(template: string, broker: { id: number; host: string }): string {
  return template.replaceAll('{id}', String(broker.id)).replaceAll('{host}', broker.host);
}

/**
 * The argv the configured backend runs for one broker, with {id} and {host} replaced inside each
 * element: an element stays exactly one argument whatever the host contains, and nothing goes
 * through a shell. Undefined for the local backend (no external command).
 */
export function restartCommandFor(config: Config, brokerId: number): RestartArgv | undefined {
  const broker = brokerOf(config, brokerId);
  const restart = config.kafka.restart;
  if (restart.backend === 'local') return undefined;
  if (restart.backend === 'command') {
    if (!restart.command?.length) {
      throw ApplicationFailure.create({ message: 'kafka.restart.command is required when restart.backend is command', type: Failure.InvalidConfig, nonRetryable: true });
    }
    return { backend: 'command', stop: restart.command.map((part) => substitute(part, broker)) };
  }
  const k8s = restart.kubernetes;
  const base = [k8s.kubectl, ...(k8s.context ? ['--context', k8s.context] : []), '-n', k8s.namespace];
  const pod = substitute(k8s.podName, broker);
  const timeout = Math.ceil(config.kafka.roll.brokerBackTimeoutSeconds);
  return {
    backend: 'kubernetes',
    stop: [...base, 'delete', 'pod', pod],
    start: [...base, 'wait', '--for=condition=Ready', `pod/${pod}`, `--timeout=${timeout}s`],
  };
}

/** Runs a backend command for a broker; non-zero exit fails with its stderr. */
export async function runBackendCommand(brokerId: number, argv: string[], timeoutSeconds: number, waitingFor: string): Promise<void> {
  const started = Date.now();
  const heartbeat = () => heartbeatIfInActivity({ brokerId, waitingFor, elapsedMs: Date.now() - started, last: describeCommand(argv) });
  let result: ProcessResult;
  try {
    result = await runArgv(argv, timeoutSeconds * 1000, heartbeat);
  } catch (err) {
    throw ApplicationFailure.create({
      message: `broker ${brokerId}: cannot run ${describeCommand(argv)}: ${(err as Error).message}`,
      type: Failure.RestartCommandFailed,
      nonRetryable: true,
    });
  }
  if (result.timedOut) {
    throw brokerTimeout(brokerId, `${waitingFor} (${describeCommand(argv)})`, timeoutSeconds, Date.now() - started, 'the command was still running; it was terminated');
  }
  if (result.exitCode !== 0) {
    const stderr = result.stderr.trim() || result.stdout.trim() || '(no output)';
    throw ApplicationFailure.create({
      message: `broker ${brokerId}: ${describeCommand(argv)} exited with ${result.exitCode ?? result.signal}: ${stderr}`,
      type: Failure.RestartCommandFailed,
      nonRetryable: true,
      details: [{ brokerId, argv, code: result.exitCode ?? null, signal: result.signal ?? null, stderr: result.stderr }],
    });
  }
}
