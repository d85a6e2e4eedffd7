export interface CanaryReport {
  canaryId: string;
  topic: string;
  /** Numbered messages the producer tried to write (each counted once however often it was retried). */
  sent: number;
  /** Of those, the ones the cluster acknowledged (acks=all). */
  acknowledged: number;
  /** Sends given up on: never acknowledged after every attempt. */
  produceErrors: number;
  /** Sends that needed more than one attempt (our own attempts, or more than one Produce request). */
  retries: number;
  /** Of acknowledged sends, from the first attempt to the acknowledgement. */
  maxLatencyMs: number;
  p99LatencyMs: number;
  /** Distinct numbered messages of this canary read back. */
  consumed: number;
  /** Acknowledged messages never read back. Must be 0. */
  ackedMissing: number;
  /** The first (lowest) 20 of them. */
  missingSample: number[];
  /** Extra copies: records of a number already read at another offset. */
  duplicates: number;
  /** Messages whose send was given up on (or cut short) that were written all the same. */
  unackedButConsumed: number;
  /**
   * Whether the consumer read everything up to the high watermarks taken after the stop, before
   * the timeout. When false, ackedMissing may count messages that were simply not read in time.
   */
  consumerCaughtUp: boolean;
  startedAt: string;
  stoppedAt: string;
}

export interface CanaryAccounting {
  /** Distinct numbers read back. */
  consumed: number;
  ackedMissing: number;
  missingSample: number[];
  duplicates: number;
  unackedButConsumed: number;
}

export const MISSING_SAMPLE_SIZE = 20;

/**
 * The pure part of the canary's verdict. `acked`: the numbers the producer saw acknowledged;
 * `consumed`: the number of every distinct record read back (a number read at two offsets appears
 * twice). Missing: acknowledged and never read; duplicates: copies beyond the first;
 * unackedButConsumed: read back although never acknowledged (a send given up on that landed).
 */
export function canaryAccounting(acked: Iterable<number>, consumed: Iterable<number>): CanaryAccounting {
  const copies = new Map<number, number>();
  for (const seq of consumed) copies.set(seq, (copies.get(seq) ?? 0) + 1);
  const ackedSet = new Set(acked);
  const missing: number[] = [];
  for (const seq of ackedSet) if (!copies.has(seq)) missing.push(seq);
  missing.sort((a, b) => a - b);
  let duplicates = 0;
  let unackedButConsumed = 0;
  for (const [seq, n] of copies) {
    duplicates += n - 1;
    if (!ackedSet.has(seq)) unackedButConsumed += 1;
  }
  return {
    consumed: copies.size,
    ackedMissing: missing.length,
    missingSample: missing.slice(0, MISSING_SAMPLE_SIZE),
    duplicates,
    unackedButConsumed,
  };
}

/** The q-quantile (0..1] by nearest rank; 0 for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}
