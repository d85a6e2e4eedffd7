import { execFile, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { StackError } from './errors';
import { displayPath } from './paths';

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  uid?: number;
  gid?: number;
}

/** Runs a short command and returns its stdout; a failure carries the command's own stderr. */
export function runCommand(command: string, args: string[], options: CommandOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      {
        env: options.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 60_000,
        uid: options.uid,
        gid: options.gid,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) {
          const output = `${stderr}${stdout}`.trim();
          reject(new StackError(`${path.basename(command)} ${args.join(' ')} failed: ${output || error.message}`));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

/**
 * Runs a long command (a build, a download) with its output appended to a log file rather than
 * held in memory; a failure quotes the end of that log.
 */
export function runLogged(command: string, args: string[], log: string, options: CommandOptions = {}): Promise<void> {
  mkdirSync(path.dirname(log), { recursive: true });
  const fd = openSync(log, 'a');
  writeSync(fd, `\n=== ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new StackError(`cannot run ${command}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new StackError(`${path.basename(command)} ${args.join(' ')} ${why}; see ${displayPath(log)}:\n${logTail(log)}`));
    });
  });
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
