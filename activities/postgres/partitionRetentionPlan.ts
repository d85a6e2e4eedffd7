/**
 * What partition retention does with each partition of a Postgres table, decided from its catalog
 * entries. Pure: partitionRetention.ts reads the catalog, test/unit/maintenance.test.ts checks
 * the rules.
 */
/** The key types whose bounds are instants retention can compare with its cutoff. */
const DATE_TYPES = ['date', 'timestamp without time zone', 'timestamp with time zone'];

/**
 * The instant (ISO) before which a partition must end to be dropped: the first day retention keeps,
 * at 00:00 UTC. The calendar rule of ClickHouse retention: keepMonths counts the current month.
 */
export function partitionCutoff(policy: { keepMonths?: number; keepDays?: number }, now: Date): string {
  const first =
    policy.keepMonths !== undefined
      ? new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (policy.keepMonths - 1), 1))
      : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - policy.keepDays!));
  return first.toISOString();
}

/** A value in a partition bound: a quoted literal, or a bare word (MINVALUE, MAXVALUE, a number). */
export type BoundValue = { literal: string } | { word: string };

export type PartitionBounds = { kind: 'default' } | { kind: 'range'; from: BoundValue[]; to: BoundValue[] } | { kind: 'other' };

/** Splits a bound's value list ("'2026-01-01', MAXVALUE") at the commas outside quotes. */
function values(list: string): BoundValue[] | undefined {
  const out: BoundValue[] = [];
  const re = /\s*(?:'((?:[^']|'')*)'|([A-Za-z0-9_.+-]+))\s*(,|$)/y;
  for (;;) {
    const m = re.exec(list);
    if (!m) return undefined;
    out.push(m[1] !== undefined ? { literal: m[1].replace(/''/g, "'") } : { word: m[2]!.toUpperCase() });
    if (m[3] === '') return out;
  }
}

/** pg_get_expr(relpartbound) of a partition, parsed: DEFAULT, FROM (...) TO (...), or anything else (LIST, HASH). */
export function parseBounds(text: string): PartitionBounds {
  if (text.trim() === 'DEFAULT') return { kind: 'default' };
  const m = /^FOR VALUES FROM \((.*)\) TO \((.*)\)$/.exec(text.trim());
  const from = m ? values(m[1]!) : undefined;
  const to = m ? values(m[2]!) : undefined;
  return from && to ? { kind: 'range', from, to } : { kind: 'other' };
}

/**
 * A date or timestamp bound as epoch milliseconds, rounded up (a bound a microsecond past the
 * cutoff is past it). A date or a timestamp without a zone is read as UTC; the plan reads the
 * bounds with TimeZone UTC, so a timestamptz comes with its offset. Undefined for anything else
 * ('infinity', BC dates).
 */
export function boundInstant(literal: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?$/.exec(literal);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', sign, oh = '0', om = '0', os = '0'] = m;
  const micros = Number(fraction.padEnd(6, '0'));
  const offsetMs = sign ? (sign === '-' ? -1 : 1) * (Number(oh) * 3_600_000 + Number(om) * 60_000 + Number(os) * 1000) : 0;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) + Math.ceil(micros / 1000) - offsetMs;
  return Number.isNaN(utc) ? undefined : utc;
}

/** The parent's partition key as the catalog has it (pg_partitioned_table, pg_attribute). */
export interface PartitionKey {
  /** pg_get_partkeydef: RANGE (d). */
  definition: string;
  /** partstrat: r(ange), l(ist), h(ash). */
  strategy: string;
  columns: number;
  /** format_type of the key's column; undefined when the key is an expression. */
  type: string | undefined;
}

/** Why retention cannot judge a table partitioned by this key, or undefined when it can. */
export function keyProblem(key: PartitionKey): string | undefined {
  const why = (what: string) => `partitioned by ${key.definition}: ${what}; retention judges only RANGE partitions on one date, timestamp or timestamptz column`;
  if (key.strategy !== 'r') return why(`${key.strategy === 'l' ? 'LIST' : key.strategy === 'h' ? 'HASH' : 'not RANGE'} partitions have no upper bound in time`);
  if (key.columns !== 1) return why(`a key of ${key.columns} columns`);
  if (key.type === undefined) return why('the key is an expression');
  if (!DATE_TYPES.includes(key.type)) return why(`the key column is ${key.type}`);
  return undefined;
}

/** What retention does with one partition of a table whose key it can judge, and why. */
export function judgePartition(bounds: string, cutoff: string): { action: 'drop' | 'none'; reason: string } {
  const parsed = parseBounds(bounds);
  if (parsed.kind === 'default') return { action: 'none', reason: 'the DEFAULT partition holds rows of any date: never dropped' };
  if (parsed.kind === 'other' || parsed.to.length !== 1) return { action: 'none', reason: `bounds "${bounds}" are not a range on one column: not judged` };
  const upper = parsed.to[0]!;
  if ('word' in upper) return { action: 'none', reason: `upper bound ${upper.word}: open-ended, never dropped` };
  const at = boundInstant(upper.literal);
  if (at === undefined) return { action: 'none', reason: `upper bound '${upper.literal}' is not a date or timestamp retention can read: kept` };
  return at <= Date.parse(cutoff)
    ? { action: 'drop', reason: `upper bound '${upper.literal}' is at or before the cutoff ${cutoff}: every row is older than what retention keeps` }
    : { action: 'none', reason: `upper bound '${upper.literal}' is after the cutoff ${cutoff}: kept` };
}
