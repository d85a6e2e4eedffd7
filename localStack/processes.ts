import { spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StackError } from './errors';
import { logFile, logsDir, pidsDir, stackDir } from './paths';

// Process bookkeeping reads /proc: the local stack targets Linux machines (developers' and CI's).

interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  startTime: string;
  cmdline: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    return {
      pid,
      state: fields[0] ?? '?',
      ppid: Number(fields[1]),
      pgid: Number(fields[2]),
      startTime: fields[19] ?? '',
      cmdline,
    };
  } catch {
    return undefined;
  }
}

function allProcesses(): ProcInfo[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => readProc(Number(entry)))
    .filter((p): p is ProcInfo => p !== undefined && p.state !== 'Z');
}

function isLive(info: ProcInfo | undefined): info is ProcInfo {
  return info !== undefined && info.state !== 'Z';
}

interface PidRecord {
  pid: number;
  /** Kernel start time of the process, so a recycled pid is never mistaken for ours. */
  startTime: string;
}

function pidFile(name: string): string {
  return path.join(pidsDir, `${name}.pid`);
}

function readPidRecord(name: string): PidRecord | undefined {
  try {
    return JSON.parse(readFileSync(pidFile(name), 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
}

/** The pid of a stack process that is still alive, or undefined. */
export function runningPid(name: string): number | undefined {
  const record = readPidRecord(name);
  if (!record) return undefined;
  const info = readProc(record.pid);
  return isLive(info) && info.startTime === record.startTime ? record.pid : undefined;
}

export interface ServiceProcess {
  /** Names the pid file and the log (.stack/logs/<name>.log). */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  runAs?: { uid: number; gid: number };
}

/** Logs are appended across restarts; past this size the previous generation is kept as <name>.log.1. */
const LOG_ROTATE_BYTES = 20 * 1024 * 1024;

function rotateIfLarge(file: string): void {
  try {
    if (statSync(file).size > LOG_ROTATE_BYTES) renameSync(file, `${file}.1`);
  } catch {
    // No log yet.
  }
}

/**
 * Starts a long-running service in its own process group with its output appended to its log,
 * detached so that it outlives the command that started it.
 */
export async function spawnService(spec: ServiceProcess): Promise<number> {
  mkdirSync(logsDir, { recursive: true });
  mkdirSync(pidsDir, { recursive: true });
  rotateIfLarge(logFile(spec.name));
  const fd = openSync(logFile(spec.name), 'a');
  writeSync(fd, `\n=== ${new Date().toISOString()} starting ${spec.name}\n`);
  const child = spawn(spec.command, spec.args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: spec.env ?? process.env,
    cwd: spec.cwd ?? stackDir,
    uid: spec.runAs?.uid,
    gid: spec.runAs?.gid,
  });
  closeSync(fd);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new StackError(`cannot start ${spec.name} (${spec.command}): ${err.message}`)));
  });
  child.unref();
  const pid = child.pid as number;
  const info = readProc(pid);
  writeFileSync(pidFile(spec.name), JSON.stringify({ pid, startTime: info?.startTime ?? '' } satisfies PidRecord));
  return pid;
}

/**
 * A process, the members of its process group and its descendants. PostgreSQL's children start
 * sessions of their own, so the process group alone would miss them.
 */
function family(pid: number): Set<number> {
  const processes = allProcesses();
  const members = new Set<number>([pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of processes) {
      if (!members.has(p.pid) && (p.pgid === pid || members.has(p.ppid))) {
        members.add(p.pid);
        grew = true;
      }
    }
  }
  return members;
}

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
  return true;
}

/**
 * Stops a stack process with the signal its program treats as a clean shutdown, waits until it
 * and its whole family (Postgres backends included) have exited, and kills whatever is left of
 * that family after the timeout.
 */
export async function stopProcess(name: string, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  const pid = runningPid(name);
  if (pid !== undefined) {
    // Children are remembered as they are seen: once the parent exits they are no longer linked to it.
    const seen = family(pid);
    const alive = () => {
      for (const member of family(pid)) seen.add(member);
      return [...seen].filter((member) => isLive(readProc(member)));
    };
    signalPid(pid, signal);
    if (!(await waitUntil(() => alive().length === 0, timeoutMs))) {
      for (const member of alive()) signalPid(member, 'SIGKILL');
      if (!(await waitUntil(() => alive().length === 0, 10_000))) {
        throw new StackError(`${name} (pids ${alive().join(', ')}) survived SIGKILL`);
      }
    }
  }
  rmSync(pidFile(name), { force: true });
}

export interface StrayProcess {
  pid: number;
  cmdline: string;
}

function ancestorsOfSelf(): Set<number> {
  const chain = new Set<number>();
  for (let pid: number | undefined = process.pid; pid && pid > 1 && !chain.has(pid); pid = readProc(pid)?.ppid) {
    chain.add(pid);
  }
  return chain;
}

/** The programs the stack runs as services; other processes that mention .stack (a `tail -f` of a log) are not the stack's. */
const SERVICE_PROGRAMS = new Set(['temporal', 'postgres', 'clickhouse', 'clickhouse-server', 'java', 'minio']);

/** The current ClickHouse engine runs inside Python (localStack/chdbServer.py), so its program is python3.x. */
function isChdbLauncher(p: ProcInfo): boolean {
  return /^python3(\.\d+)?$/.test(programOf(p)) && p.cmdline.includes('chdbServer.py');
}

function programOf(p: ProcInfo): string {
  try {
    return path.basename(readlinkSync(`/proc/${p.pid}/exe`));
  } catch {
    return path.basename(p.cmdline.split(' ')[0] ?? '');
  }
}

/**
 * Service processes that still run after the pid files were dealt with: those whose command line
 * mentions the .stack directory (every service is started with paths inside it) and members of
 * the process groups recorded in pid files. Catches services whose pid file was lost.
 */
export function strayStackProcesses(): StrayProcess[] {
  const marker = `${stackDir}/`;
  const recordedGroups = new Set<number>();
  try {
    for (const entry of readdirSync(pidsDir)) {
      const pid = runningPid(entry.replace(/\.pid$/, ''));
      if (pid !== undefined) recordedGroups.add(pid);
    }
  } catch {
    // No pid directory: nothing was ever started.
  }
  const exclude = ancestorsOfSelf();
  return allProcesses()
    .filter((p) => !exclude.has(p.pid) && (p.cmdline.includes(marker) || recordedGroups.has(p.pgid)))
    .filter((p) => recordedGroups.has(p.pgid) || SERVICE_PROGRAMS.has(programOf(p)) || isChdbLauncher(p))
    .map((p) => ({ pid: p.pid, cmdline: p.cmdline }));
}

/** Terminates stray stack processes (TERM, then KILL) and returns the ones still alive after that. */
export async function killStrays(strays: StrayProcess[]): Promise<StrayProcess[]> {
  const alive = () => strays.filter((s) => isLive(readProc(s.pid)));
  for (const s of strays) signalPid(s.pid, 'SIGTERM');
  if (!(await waitUntil(() => alive().length === 0, 15_000))) {
    for (const s of alive()) signalPid(s.pid, 'SIGKILL');
    await waitUntil(() => alive().length === 0, 5_000);
  }
  return alive();
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Looks up a system account without shelling out (Node has no getpwnam). */
export function systemUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new StackError(`the system user '${name}' does not exist`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

