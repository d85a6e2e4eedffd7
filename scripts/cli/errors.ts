/** The ballast CLI's exit codes: scripts and alerting match on them, so they never change. */
export const Exit = {
  ok: 0,
  failed: 1,
  usage: 2,
  refused: 3,
  /** The run waits for an approval, or following it timed out or was stopped. */
  waiting: 4,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

const KIND: Record<ExitCode, string> = { 0: 'ok', 1: 'failed', 2: 'usage', 3: 'refused', 4: 'waiting' };

/** An error a person can act on: its message names what is wrong; never printed with a stack. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }

  get kind(): string {
    return KIND[this.exitCode];
  }
}

export const usageError = (message: string) => new CliError(Exit.usage, message);
