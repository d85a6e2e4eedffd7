/**
 * The issue-14 targets the bench judges, and how its figures are written. Pure: the bench measures,
 * these decide PASS or FAIL, so the rules are unit-tested (test/unit/benchTargets.test.ts).
 */

/** The limits, in one place so the output, the README and the tests say the same. */
export const LIMITS = {
  /** Peak RSS at the largest size over peak RSS at the smallest (ten times less data). */
  memoryGrowth: 1.25,
  /** Worker CPU seconds per GB (10^9 bytes) of pieces written. */
  cpuSecondsPerGb: 4,
  postgresBackupRatio: 1.1,
  postgresFixedCostMs: 250,
  /** The dump size the Postgres ratio must be measured on. */
  postgresMinDumpBytes: 500 * 1000 ** 2,
  clickhouseBackupRatio: 1.6,
  /** The ClickHouse ratio is judged on tables of at least this many rows (10 M and 50 M). */
  clickhouseMinRows: 10_000_000,
  restoreRatio: 1.15,
  rollRatio: 1.2,
  /** compaction against a clickhouse-client OPTIMIZE ... FINAL loop over the same partitions (issue 15). */
  compactionRatio: 1.1,
  /** demoReset (forced, reseed empty) against a script of the raw tools doing the same wipe (issue 16). */
  demoResetRatio: 1.25,
} as const;

export type Status = 'PASS' | 'FAIL' | 'n/a';

export interface Verdict {
  target: string;
  figure: string;
  limit: string;
  status: Status;
  note?: string;
}

export const fmtSeconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
export const fmtRatio = (r: number): string => `${r.toFixed(3)}x`;
export const fmtMb = (bytes: number): string => `${(bytes / 1000 ** 2).toFixed(0)} MB`;

export function ratio(measured: number, raw: number): number {
  if (!(raw > 0)) throw new Error(`a ratio needs a positive raw figure, got ${raw}`);
  return measured / raw;
}

/** CPU seconds per GB (10^9 bytes). */
export function cpuPerGb(cpuSeconds: number, bytes: number): number {
  if (!(bytes > 0)) throw new Error(`CPU per GB needs bytes streamed, got ${bytes}`);
  return cpuSeconds / (bytes / 1000 ** 3);
}

/** A figure that must not exceed its limit. */
export function atMost(target: string, value: number, limit: number, format: (n: number) => string, note?: string): Verdict {
  return { target, figure: format(value), limit: `<= ${format(limit)}`, status: value <= limit ? 'PASS' : 'FAIL', ...(note ? { note } : {}) };
}

/** A target this run did not measure (a part or size left out), said rather than passed. */
export function notMeasured(target: string, limit: string, why: string): Verdict {
  return { target, figure: '-', limit, status: 'n/a', note: why };
}

export interface PeakAtSize {
  label: string;
  /** How much data the size holds, relative to the smallest (1 for the smallest). */
  scale: number;
  peakMb: number;
}

/**
 * Flat memory: the peak at the largest size is at most LIMITS.memoryGrowth times the peak at the
 * smallest, and the two sizes are at least ten times apart; judged on nothing less.
 */
export function flatMemory(peaks: PeakAtSize[], maxGrowth: number = LIMITS.memoryGrowth): Verdict {
  const target = 'worker peak RSS flat across sizes';
  const limit = `largest <= ${maxGrowth}x smallest`;
  const bySize = [...peaks].sort((a, b) => a.scale - b.scale);
  const smallest = bySize[0];
  const largest = bySize.at(-1);
  const figure = bySize.map((p) => `${p.label} ${p.peakMb.toFixed(0)} MB`).join(', ');
  if (!smallest || !largest || largest.scale < 10 * smallest.scale) {
    return { target, figure: figure || '-', limit, status: 'n/a', note: 'needs two sizes ten times apart (BENCH_SIZES with small and large)' };
  }
  const growth = largest.peakMb / smallest.peakMb;
  return { target, figure: `${figure} (${fmtRatio(growth)})`, limit, status: growth <= maxGrowth ? 'PASS' : 'FAIL' };
}

/** The verdicts as an aligned table, one line each, and whether every judged one passed. */
export function verdictTable(verdicts: Verdict[]): { lines: string[]; allPassed: boolean } {
  const rows = [['target', 'figure', 'limit', 'result'], ...verdicts.map((v) => [v.target, v.figure, v.limit, v.status + (v.note ? ` (${v.note})` : '')])];
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  '));
  return { lines, allPassed: verdicts.every((v) => v.status !== 'FAIL') };
}

/** The Postgres backup ratio, judged only on a dump of the size the target names. */
export function postgresRatio(backupMs: number, rawMs: number, dumpBytes: number): Verdict {
  const target = 'postgres backup vs pg_dump -Fc';
  const measured = ratio(backupMs, rawMs);
  if (dumpBytes < LIMITS.postgresMinDumpBytes) {
    return { target, figure: fmtRatio(measured), limit: `<= ${fmtRatio(LIMITS.postgresBackupRatio)}`, status: 'n/a', note: `dump ${fmtMb(dumpBytes)}, under the ${fmtMb(LIMITS.postgresMinDumpBytes)} the target is measured on` };
  }
  return atMost(target, measured, LIMITS.postgresBackupRatio, fmtRatio, `dump ${fmtMb(dumpBytes)}`);
}
