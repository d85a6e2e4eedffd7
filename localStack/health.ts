import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { logTail } from './commands';
import { StackError } from './errors';
import { displayPath, logFile } from './paths';
import { runningPid } from './processes';
import type { StackContext, StatusLine } from './service';

/** Rejects when a check takes longer than the config's health-check timeout. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface HealthWait {
  /** Names the service in errors. */
  service: string;
  /** The stack processes that must stay alive meanwhile (pid-file names); their logs are quoted on failure. */
  processes: string[];
  timeoutMs: number;
  /** Resolves when healthy; its last error is reported on timeout. */
  check: () => Promise<void>;
}

/**
 * Polls a health check until it passes. Fails early, quoting the log, when a process exits while
 * starting (a port already in use, a bad config), instead of waiting out the timeout.
 */
export async function waitHealthy(wait: HealthWait): Promise<void> {
  const deadline = Date.now() + wait.timeoutMs;
  let lastError = 'no check has run';
  for (;;) {
    let healthy = false;
    try {
      await wait.check();
      healthy = true;
    } catch (err) {
      lastError = (err as Error).message;
    }
    // Checked even after a passing check: something else may be answering on the port.
    const dead = wait.processes.find((name) => runningPid(name) === undefined);
    if (dead) {
      throw new StackError(
        `${wait.service}: ${dead} exited while starting; see ${displayPath(logFile(dead))}:\n${logTail(logFile(dead))}`,
      );
    }
    if (healthy) return;
    if (Date.now() > deadline) {
      const logs = wait.processes.map((name) => displayPath(logFile(name))).join(', ');
      throw new StackError(
        `${wait.service} did not become healthy within ${wait.timeoutMs / 1000} s (last check: ${lastError}); see ${logs}`,
      );
    }
    await sleep(500);
  }
}

/** Whether something accepts TCP connections on a port. */
export function portOpen(host: string, port: number, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs);
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`${host}:${port} did not accept a connection within ${timeoutMs / 1000} s`));
    });
    socket.once('error', (err) => reject(new Error(`${host}:${port}: ${err.message}`)));
  });
}

export function healthTimeoutMs(ctx: StackContext): number {
  return ctx.loaded.config.healthCheck.timeoutSeconds * 1000;
}

/** The status line of a service run as one stack process: down without it, unhealthy if its check fails. */
export async function processStatus(
  ctx: StackContext,
  line: Omit<StatusLine, 'state' | 'pid' | 'detail'>,
  processName: string,
  check: () => Promise<void>,
): Promise<StatusLine> {
  const pid = runningPid(processName);
  if (pid === undefined) return { ...line, state: 'down' };
  try {
    await withTimeout(check(), healthTimeoutMs(ctx), line.name);
    return { ...line, state: 'up', pid };
  } catch (err) {
    return { ...line, state: 'unhealthy', pid, detail: (err as Error).message };
  }
}
