/** What the bench reads about running processes from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system) the process itself has used so far, all its threads; not its
 * children's (the worker's pg_dump and pg_restore are the raw tools' cost, not the worker's).
 */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** The process's peak resident memory since it started (VmHWM), in MB. */
export const peakRssMb = (pid: number): number => statusKb(pid, 'VmHWM') / 1024;

/** Its resident memory now (VmRSS), in MB. */
export const rssMb = (pid: number): number => statusKb(pid, 'VmRSS') / 1024;

/** The pid of the running program named `program` (its executable's base name). */
export function programPid(program: string): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv0 = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[0]!;
      if (path.basename(argv0) === program) return Number(entry);
    } catch {
      // the process ended while the list was read
    }
  }
  throw new Error(`no running ${program} process`);
}

/** cpuSeconds, or NaN once the process has gone (the shared stack restarts a server now and then). */
function cpuSecondsIfRunning(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds each of the given processes spends while `fn` runs; NaN for one that ended
 * meanwhile. `pids` are looked up at the start, so a server restarted since the last call counts.
 */
export async function cpuDuring<T>(pids: () => Record<string, number>, fn: () => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const watched = Object.entries(pids());
  const before = Object.fromEntries(watched.map(([name, pid]) => [name, cpuSeconds(pid)]));
  const value = await fn();
  const cpu = Object.fromEntries(watched.map(([name, pid]) => [name, cpuSecondsIfRunning(pid) - before[name]!]));
  return { value, cpu };
}

export const cpuText = (cpu: Record<string, number>): string =>
  Object.entries(cpu)
    .map(([name, s]) => `${name} ${Number.isNaN(s) ? '- (restarted meanwhile)' : `${s.toFixed(2)} s`}`)
    .join(', ');
