import type { Figure, SystemHealth, SystemName } from '../../contracts/healthTypes';

/** What a system check found: figures, and the problems that make the system unhealthy. */
export interface CheckFindings {
  figures: Record<string, Figure>;
  problems: string[];
}

export class CheckTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms / 1000} s`);
    this.name = 'CheckTimeoutError';
  }
}

/** Rejects when `promise` has not settled within `ms`. The caller closes whatever is left open. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeoutError(what, ms)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs one system's check and turns whatever happens into a report entry: a health check reports
 * failures, it does not throw them, so one system failing never hides the others.
 * `figures` collects what the check learned before it failed.
 */
export async function runCheck(
  system: SystemName,
  timeoutMs: number,
  check: (figures: Record<string, Figure>) => Promise<string[]>,
  now: () => Date = () => new Date(),
): Promise<SystemHealth> {
  const started = now();
  const figures: Record<string, Figure> = {};
  let problems: string[];
  try {
    problems = await withTimeout(check(figures), timeoutMs, `${system} check`);
  } catch (err) {
    problems = [errorText(err)];
  }
  const health: SystemHealth = {
    system,
    healthy: problems.length === 0,
    checkedAt: started.toISOString(),
    durationMs: now().getTime() - started.getTime(),
    figures,
  };
  if (problems.length > 0) health.error = problems.join('; ');
  return health;
}

/** Error text that still says something when a client throws an error with an empty message. */
export function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(errorText).join('; ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const message = err.message || err.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(err);
}
