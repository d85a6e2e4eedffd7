/**
 * The bench's data sizes. The largest is ten times the smallest on both systems, so the worker's
 * peak memory can be compared across a tenfold growth of the data it streams.
 */
export interface BenchSize {
  label: 'small' | 'medium' | 'large';
  /** `pgbench -i -s`: compresses to almost nothing, so it only adds rows and tables. */
  pgbenchScale: number;
  /** Rows of about 1 KiB of random base64 each: what makes the -Fc dump big (base64 packs to about 3/4). */
  pgTextRows: number;
  clickhouseRows: number;
}

export const SIZES: readonly BenchSize[] = [
  { label: 'small', pgbenchScale: 1, pgTextRows: 72_000, clickhouseRows: 5_000_000 },
  { label: 'medium', pgbenchScale: 2, pgTextRows: 144_000, clickhouseRows: 10_000_000 },
  { label: 'large', pgbenchScale: 10, pgTextRows: 720_000, clickhouseRows: 50_000_000 },
];

/** Random bytes per text row; base64 makes 1,024 characters of them. */
export const PG_TEXT_RANDOM_BYTES = 768;

/** The Postgres database and the ClickHouse database (table `events`) of a size: the bench's own, never a seeded one. */
export function benchDatabase(size: Pick<BenchSize, 'label'>): string {
  return `bench_${size.label}`;
}

/** An almost empty database: its backup's wall time minus its pg_dump's is the fixed cost per run. */
export const TINY_DATABASE = 'bench_tiny';

/**
 * BENCH_SIZES: a comma-separated list of labels (e.g. "small,medium"); all sizes when unset or
 * empty. Order follows SIZES whatever the order given.
 */
export function selectSizes(spec: string | undefined): BenchSize[] {
  const wanted = (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted.length === 0) return [...SIZES];
  const unknown = wanted.filter((w) => !SIZES.some((s) => s.label === w));
  if (unknown.length) throw new Error(`BENCH_SIZES: unknown size ${unknown.join(', ')}; known: ${SIZES.map((s) => s.label).join(', ')}`);
  return SIZES.filter((s) => wanted.includes(s.label));
}

export const BENCH_PARTS = ['data', 'roll', 'compaction', 'reset'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

/**
 * BENCH_ONLY: a comma-separated list of parts: "data" (backups, restores, memory, CPU), "roll"
 * (Kafka rolling restart), "compaction", "reset" (demoReset); every part when unset.
 */
export function selectParts(spec: string | undefined): BenchPart[] {
  const wanted = (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (wanted.length === 0) return [...BENCH_PARTS];
  const unknown = wanted.filter((w) => !(BENCH_PARTS as readonly string[]).includes(w));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown part ${unknown.join(', ')}; known: ${BENCH_PARTS.join(', ')}`);
  return BENCH_PARTS.filter((p) => wanted.includes(p));
}
