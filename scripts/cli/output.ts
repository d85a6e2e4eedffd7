/**
 * Where the CLI writes: with `-o json`, one JSON document on stdout and nothing else there; logs,
 * prompts and the live progress line always go to stderr.
 */
import { CliError, Exit, type ExitCode } from './errors';

export type OutputMode = 'text' | 'json';

export function outputMode(value: unknown): OutputMode {
  if (value === undefined || value === 'text' || value === 'json') return (value ?? 'text') as OutputMode;
  throw new CliError(Exit.usage, `-o/--output: must be text or json, got ${JSON.stringify(value)}`);
}

export class Output {
  private lastProgress = '';

  constructor(
    readonly mode: OutputMode,
    private readonly stdout: NodeJS.WriteStream = process.stdout,
    private readonly stderr: NodeJS.WriteStream = process.stderr,
  ) {}

  log(line: string): void {
    this.endProgress();
    this.stderr.write(`${line}\n`);
  }

  /** The live progress line: rewritten in place on a terminal, one line per change otherwise. */
  progress(line: string): void {
    if (line === this.lastProgress) return;
    this.lastProgress = line;
    this.stderr.write(this.stderr.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
  }

  private endProgress(): void {
    if (this.lastProgress && this.stderr.isTTY) this.stderr.write('\n');
    this.lastProgress = '';
  }

  /** The command's one result: `document` as JSON, or `text` for a person. */
  result(document: Record<string, unknown>, text: string): void {
    this.endProgress();
    if (this.mode === 'json') this.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    else if (text) this.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** A failed command: the message on stderr, and with -o json the error document on stdout. */
  error(err: CliError): void {
    this.endProgress();
    this.stderr.write(`ballast: ${err.message}\n`);
    if (this.mode === 'json') this.stdout.write(`${JSON.stringify({ ok: false, exitCode: err.exitCode, error: { kind: err.kind, message: err.message } }, null, 2)}\n`);
  }
}

/** Document fields every JSON result carries. */
export function status(exitCode: ExitCode): { ok: boolean; exitCode: ExitCode } {
  return { ok: exitCode === Exit.ok, exitCode };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** "3d 4h", "2h 05m", "4m 10s", "12s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n');
}
