/**
 * The tables a ClickHouse restore works with beside its target: the side table it loads, the name
 * the replaced table is kept under, and, on Atomic databases, the exchange partner that records
 * whose UUID went where. A retry reads how far an earlier attempt got from these names (and
 * UUIDs) alone: heartbeat details can be lost with the worker that sent them. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { qualifiedName } from './sql';

export interface SideNames {
  table: string;
  /** `<table>__ballast_loading`: only ever holds restored rows, so a new attempt may drop it. */
  loading: string;
  /** `<table>_before_<run>`: the replaced table, kept; the restore never drops it. */
  aside: string;
  /**
   * `<table>__ballast_<run>_` + the first 8 hex digits of the replaced table's UUID: the loaded
   * copy's name while it is exchanged with the target. Holding a table with that UUID, it holds
   * the replaced table: the exchange happened.
   */
  swapPrefix: string;
}

/**
 * The run's tag in table names: 8 hex digits of the restore id's sha256. Not the id's tail, as
 * the Postgres restore uses: the aside table is how a retry recognises that this run already
 * swapped, so two runs must not share it (a schedule's ids differ only in a timestamp).
 */
export function runTag(restoreId: string): string {
  return createHash('sha256').update(restoreId).digest('hex').slice(0, 8);
}

export function sideNames(table: string, restoreId: string): SideNames {
  const tag = runTag(restoreId);
  return { table, loading: `${table}__ballast_loading`, aside: `${table}_before_${tag}`, swapPrefix: `${table}__ballast_${tag}_` };
}

/** The first 8 hex digits of a table UUID; '' for none (18.16, Ordinary databases: the nil UUID). */
export function uuidPrefix(uuid: string): string {
  const hex = uuid.replace(/-/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) && !/^0+$/.test(hex) ? hex.slice(0, 8) : '';
}

/** The exchange partner's name for a target whose UUID is `targetUuid`. */
export function swapName(names: SideNames, targetUuid: string): string {
  const prefix = uuidPrefix(targetUuid);
  if (!prefix) throw new Error(`${names.table} has no table UUID to exchange it by`);
  return `${names.swapPrefix}${prefix}`;
}

/**
 * How long the file name ClickHouse makes of a table name is: escapeForFileName keeps ASCII
 * letters, digits and `_`, and writes every other byte as %XX.
 */
export function fileNameLength(name: string): number {
  let length = 0;
  for (const byte of Buffer.from(name, 'utf8')) length += /[A-Za-z0-9_]/.test(String.fromCharCode(byte)) ? 1 : 3;
  return length;
}

/** Room left for `.sql.tmp` under the usual 255-byte limit of a file name. */
const MAX_FILE_NAME = 240;

/** Throws when a side table's name would not fit in a file name. */
export function checkSideNames(names: SideNames): void {
  const longest = `${names.swapPrefix}00000000`;
  if (fileNameLength(longest) > MAX_FILE_NAME) {
    throw new Error(
      `table name ${JSON.stringify(names.table)} is too long to restore beside itself: its side table ${JSON.stringify(longest)} would need a ${fileNameLength(longest)}-byte file name (at most ${MAX_FILE_NAME})`,
    );
  }
}

/**
 * Why a table cannot be restored beside itself, or undefined. A Replicated*MergeTree's saved
 * definition names its ZooKeeper path: a side table created from it would join the original's
 * replicas and share its data instead of loading its own.
 */
export function replicatedRefusal(database: string, table: string, engine: string): string | undefined {
  if (!/^Replicated.*MergeTree$/.test(engine)) return undefined;
  return `${database}.${table} is ${engine}: a restore loads it into a side table beside the original, which would use the original's ZooKeeper path and join its replicas; ballast does not restore Replicated tables`;
}

/** `RENAME TABLE a TO b, c TO d` within one database (a dictionary takes RENAME DICTIONARY). */
export function renameStatement(database: string, pairs: [from: string, to: string][], dictionary = false): string {
  if (pairs.length === 0) throw new Error('nothing to rename');
  const list = pairs.map(([from, to]) => `${qualifiedName(database, from)} TO ${qualifiedName(database, to)}`).join(', ');
  return `RENAME ${dictionary ? 'DICTIONARY' : 'TABLE'} ${list}`;
}

/** `EXCHANGE TABLES a AND b`: Atomic databases only. */
export function exchangeStatement(database: string, a: string, b: string, dictionary = false): string {
  return `EXCHANGE ${dictionary ? 'DICTIONARIES' : 'TABLES'} ${qualifiedName(database, a)} AND ${qualifiedName(database, b)}`;
}

/** A table seen in system.tables: its UUID, '' where the server has none. */
export interface SeenTable {
  name: string;
  uuid: string;
}

/** What of the restore's tables the target database holds. */
export interface SideState<T extends SeenTable = SeenTable> {
  target?: T;
  loading?: T;
  aside?: T;
  /** Tables named like this run's exchange partner. */
  swaps: T[];
}

/** Sorts the target database's tables into the restore's roles. */
export function sideState<T extends SeenTable>(names: SideNames, tables: T[]): SideState<T> {
  const find = (name: string) => tables.find((t) => t.name === name);
  const swaps = tables.filter((t) => t.name.startsWith(names.swapPrefix) && /^[0-9a-f]{8}$/.test(t.name.slice(names.swapPrefix.length)));
  return { target: find(names.table), loading: find(names.loading), aside: find(names.aside), swaps };
}

export type SideStep =
  /** Load (or resume loading) the side table, then swap. */
  | { step: 'load' }
  /** `from` holds the complete load: swap it in. */
  | { step: 'swap'; from: string }
  /** The exchange happened; the replaced table, under `from`, takes the aside name. */
  | { step: 'keepAside'; from: string }
  | { step: 'done' }
  | { step: 'refuse'; reason: string };

/**
 * What a (re)started restore does next, from what the database holds. `swapStarted`: the earlier
 * attempt's last heartbeat said it had begun swapping; it matters only where nothing else tells,
 * a target that did not exist before and has now taken the loaded table's name.
 */
export function nextSideStep(names: SideNames, state: SideState, swapStarted: boolean): SideStep {
  const { target, loading, aside, swaps } = state;
  const refuse = (reason: string): SideStep => ({ step: 'refuse', reason });
  if (swaps.length > 1) return refuse(`more than one exchange table (${swaps.map((s) => s.name).join(', ')}) is there; an earlier attempt did not end cleanly`);
  const swap = swaps[0];
  if (swap) {
    const recorded = swap.name.slice(names.swapPrefix.length);
    if (uuidPrefix(swap.uuid) === recorded) {
      // It holds the UUID it was named after: the replaced table's.
      if (!target) return refuse(`${swap.name} holds the table this restore replaced, but ${names.table} is missing`);
      if (aside) return refuse(`${swap.name} holds the table this restore replaced, and ${names.aside} exists as well`);
      return { step: 'keepAside', from: swap.name };
    }
    if (target && uuidPrefix(target.uuid) !== recorded) {
      return refuse(`${names.table} is no longer the table this restore set out to replace (its UUID changed); the loaded copy is ${swap.name}`);
    }
    return { step: 'swap', from: swap.name };
  }
  if (aside) {
    if (target) return { step: 'done' };
    // RENAME t TO aside, loading TO t stopped halfway.
    if (loading) return { step: 'swap', from: names.loading };
    return refuse(`${names.aside} exists, but neither ${names.table} nor ${names.loading} does`);
  }
  if (swapStarted && target && !loading) return { step: 'done' };
  return { step: 'load' };
}
