import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { runProcess, type ProcessOptions, type ProcessResult } from '../activities/common/process';
import { StackError } from './errors';
import { displayPath } from './paths';

export type CommandOptions = Pick<ProcessOptions, 'env' | 'cwd' | 'timeoutMs' | 'uid' | 'gid'>;

function commandLine(command: string, args: string[]): string {
  return `${path.basename(command)} ${args.join(' ')}`;
}

function howItEnded(result: { timedOut: boolean; signal?: string; exitCode?: number }, timeoutMs: number | undefined): string {
  if (result.timedOut) return `timed out after ${(timeoutMs ?? 0) / 1000} s`;
  return result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
}

/** Runs a short command and returns its stdout; a failure carries the command's own stderr. */
export async function runCommand(command: string, args: string[], options: CommandOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let result: ProcessResult;
  try {
    result = await runProcess(command, args, { ...options, timeoutMs });
  } catch (err) {
    throw new StackError(`${commandLine(command, args)} failed: ${(err as Error).message}`);
  }
  if (result.failed) {
    const output = `${result.stderr}${result.stdout}`.trim();
    throw new StackError(`${commandLine(command, args)} failed: ${output || howItEnded(result, timeoutMs)}`);
  }
  return result.stdout;
}

/**
 * Runs a long command (a build, a download) with its output appended to a log file rather than
 * held in memory; a failure quotes the end of that log.
 */
export async function runLogged(command: string, args: string[], log: string, options: CommandOptions = {}): Promise<void> {
  mkdirSync(path.dirname(log), { recursive: true });
  appendFileSync(log, `\n=== ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
  let result: ProcessResult;
  try {
    result = await runProcess(command, args, { ...options, outputFile: log });
  } catch (err) {
    throw new StackError((err as Error).message);
  }
  if (!result.failed) return;
  const why = howItEnded(result, options.timeoutMs);
  throw new StackError(`${commandLine(command, args)} ${why}; see ${displayPath(log)}:\n${logTail(log)}`);
}

/** The last lines of a log, for error messages that must be understandable on their own. */
export function logTail(log: string, lines = 15): string {
  try {
    const text = readFileSync(log, 'utf8');
    return text
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((line) => `    ${line}`)
      .join('\n');
  } catch {
    return '    (no log yet)';
  }
}

/** Whether a program can be found on PATH (or at the given path). */
export async function hasProgram(program: string): Promise<boolean> {
  try {
    await runCommand('sh', ['-c', 'command -v "$1"', 'sh', program]);
    return true;
  } catch {
    return false;
  }
}
