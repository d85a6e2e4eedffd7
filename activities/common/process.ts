/**
 * The one way ballast starts a program: execa, with an argument vector and never a shell, a
 * timeout and a cancellation signal that both send SIGTERM and then SIGKILL, and the end of the
 * program's own stderr in the error it fails with.
 *
 * execa is ESM-only and this project compiles to CommonJS, so it is loaded with import(), as
 * @platformatic/kafka is.
 */
import { closeSync, constants, existsSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Options } from 'execa' with { 'resolution-mode': 'import' };

const execa = async () => (await import('execa')).execa;

/** How long a program has between SIGTERM and SIGKILL. */
const KILL_AFTER_MS = 5_000;
/** Output kept per stream: enough for an error message, never a whole dump. */
const OUTPUT_LIMIT = 64 * 1024 * 1024;

export interface ProcessOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** SIGTERM after this long (then SIGKILL); no limit when undefined. */
  timeoutMs?: number;
  /** An activity's cancellation signal, say: SIGTERM when it aborts (then SIGKILL). */
  cancelSignal?: AbortSignal;
}

export interface ProcessResult {
  exitCode: number | undefined;
  signal: string | undefined;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  failed: boolean;
}

function baseOptions(options: ProcessOptions): Options {
  return {
    env: options.env,
    extendEnv: options.env === undefined,
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
    timeout: options.timeoutMs,
    cancelSignal: options.cancelSignal,
    killSignal: 'SIGTERM',
    forceKillAfterDelay: KILL_AFTER_MS,
    shell: false,
    stripFinalNewline: false,
  };
}

/**
 * Runs a short program to its end and returns what it printed and how it ended. It never throws
 * for a non-zero exit, a timeout or a cancellation: the caller decides what each means. It throws
 * only when the program cannot start at all (not found, not executable).
 */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: ProcessOptions & {
    /** Appends the program's stdout and stderr to this file instead of returning them: a long build's output. */
    outputFile?: string;
    /** Written to the program's stdin; stdin is closed (ignored) when absent. */
    input?: string;
  } = {},
): Promise<ProcessResult> {
  const output = options.outputFile ? { stdout: { file: options.outputFile, append: true }, stderr: { file: options.outputFile, append: true } } : {};
  const result = await (await execa())(command, args, { ...baseOptions(options), ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }), reject: false, maxBuffer: OUTPUT_LIMIT, ...output });
  if (result.failed && result.exitCode === undefined && !result.timedOut && !result.isCanceled && !result.signal) {
    throw new Error(`${command} could not start: ${result.shortMessage}`);
  }
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    timedOut: result.timedOut,
    cancelled: result.isCanceled,
    failed: result.failed,
  };
}

/**
 * A started program's end: resolves when it exits 0, else rejects naming it, how it ended and the
 * end of its stderr. The caller awaits it when it is ready; a failure before then is not unhandled.
 */
function endOf(what: string, subprocess: PromiseLike<unknown>): Promise<void> {
  const done = Promise.resolve(subprocess).then(
    () => undefined,
    (err: { exitCode?: number; signal?: string; stderr?: unknown; shortMessage?: string }) => {
      const how = err.signal ?? (err.exitCode === undefined ? err.shortMessage : `exit ${err.exitCode}`);
      throw new Error(`${what} failed (${how}): ${outputTail(String(err.stderr ?? ''))}`);
    },
  );
  done.catch(() => undefined);
  return done;
}

/** A started program's streams, and its end. */
export interface StreamingProcess {
  stdin: Writable | null;
  stdout: Readable | null;
  /** Settles when the program has ended; rejects, quoting the end of its stderr, unless it exited 0. */
  done: Promise<void>;
  kill(): void;
}

/**
 * Starts a program whose stdin or stdout is a stream the caller connects (pg_dump into an upload,
 * a download into pg_restore). `what` names it in the error, e.g. "pg_dump of shop".
 */
export async function startStreamingProcess(
  what: string,
  command: string,
  args: readonly string[],
  streams: { stdin: 'pipe' | 'ignore'; stdout: 'pipe' | 'ignore' },
  options: ProcessOptions = {},
): Promise<StreamingProcess> {
  const subprocess = (await execa())(command, args, {
    ...baseOptions(options),
    stdin: streams.stdin,
    stdout: streams.stdout,
    buffer: { stdout: false },
    maxBuffer: OUTPUT_LIMIT,
  });
  return { stdin: subprocess.stdin, stdout: subprocess.stdout, done: endOf(what, subprocess), kill: () => subprocess.kill('SIGKILL') };
}

/** A started program writing its stdout into a named pipe, and the descriptor to read it from. */
export interface FifoProcess {
  /** The reading end: fs.read returns what the program wrote, 0 once it has closed its stdout. */
  fd: number;
  /** Settles when the program has ended; rejects, quoting the end of its stderr, unless it exited 0. */
  done: Promise<void>;
  kill(): void;
  /** Closes the reading end (a program still writing then fails with a broken pipe). */
  close(): void;
}

/**
 * Starts a program whose stdout the caller reads with fs.read into buffers of its own (a dump
 * into an upload's part buffers). A child's stdout as a stream hands the worker a fresh 64 KiB
 * buffer per read: a gigabyte is 16,000 of them, and every 16 MB or so of such external memory
 * makes V8 mark and compact the worker's whole heap, which costs a worker about 4 s of CPU per GB
 * (`npm run bench`). Read into reused buffers, the same bytes allocate nothing.
 *
 * The stdout is a named pipe in a private temporary folder, removed once both ends are open.
 */
export async function startProcessIntoFifo(what: string, command: string, args: readonly string[], options: ProcessOptions = {}): Promise<FifoProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'ballast-fifo-'));
  const path = join(dir, 'stdout');
  let reader: number | undefined;
  let writer: number | undefined;
  try {
    const made = await runProcess('mkfifo', ['-m', '600', path]);
    if (made.failed) throw new Error(`mkfifo ${path} failed: ${outputTail(made.stderr)}`);
    // A FIFO's end opens at once when the other end is open: a non-blocking reading end first
    // lets the writing end open, which lets the blocking reading end (the one read) open. The
    // program gets a write-only end: once ours is closed its exit is the reader's end of file,
    // and if the reader goes (the worker dies) its next write fails instead of waiting forever.
    const opener = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      writer = openSync(path, constants.O_WRONLY);
      reader = openSync(path, constants.O_RDONLY);
    } finally {
      closeSync(opener);
    }
    // execa's types admit only descriptors 3 to 9 here; at run time it hands any descriptor to
    // spawn, as Node does.
    const stdout = writer as unknown as 3;
    const subprocess = (await execa())(command, args, { ...baseOptions(options), stdin: 'ignore', stdout, maxBuffer: OUTPUT_LIMIT });
    const done = endOf(what, subprocess);
    const fd = reader;
    reader = undefined;
    let open = true;
    return {
      fd,
      done,
      kill: () => subprocess.kill('SIGKILL'),
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  } finally {
    if (writer !== undefined) closeSync(writer);
    if (reader !== undefined) closeSync(reader);
    await rm(dir, { recursive: true, force: true });
  }
}

let stdbuf: string | null | undefined;

/**
 * The program and arguments that run `command` with a 1 MiB stdio buffer on its stdout: through
 * coreutils' stdbuf (which execs the program, so no process stands in between) when the machine
 * has it, else the command as is. A program writing through stdio into a pipe writes 4 KiB at a
 * time and the worker wakes up for each: pg_dump's gigabyte is 250,000 reads, most of the
 * worker's CPU. Same bytes, in about a tenth of the reads.
 */
export function withBufferedStdout(command: string, args: readonly string[]): { command: string; args: string[] } {
  if (stdbuf === undefined) stdbuf = ['/usr/bin/stdbuf', '/bin/stdbuf'].find((p) => existsSync(p)) ?? null;
  return stdbuf ? { command: stdbuf, args: ['--output=1M', command, ...args] } : { command, args: [...args] };
}

/** An argument vector as a person would type it, for messages and reports. */
export function describeCommand(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./{}-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** The last `limit` characters of a program's output, for an error message. */
export function outputTail(output: string, limit = 4_000): string {
  const trimmed = output.trim();
  return trimmed.length > limit ? `…${trimmed.slice(trimmed.length - limit)}` : trimmed;
}
