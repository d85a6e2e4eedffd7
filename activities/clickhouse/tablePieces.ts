/**
 * What a ClickHouse restore is asked to do, checked before anything is read or changed: the
 * table's manifest pieces and the target database.
 */
import type { BackupPiece } from '../../contracts/backupTypes';
import { validateName } from './sql';

/** Databases no restore or teardown may touch, whatever the config says. */
export const RESERVED_DATABASES = ['system', 'default', 'information_schema', 'INFORMATION_SCHEMA'];

/** One partition piece, checked. */
export interface PartitionPiece {
  piece: BackupPiece;
  partitionId: string;
  rows: number;
}

/** The table's pieces, checked against the request. */
export interface TablePieces {
  schema: BackupPiece;
  partitions: PartitionPiece[];
  /** False for tables whose engine is not of the MergeTree family: schema only. */
  dataExported: boolean;
  engine: string;
}

/**
 * Checks names and pieces before anything is read or changed; throws plain Errors naming the field
 * (callers turn them into non-retryable InvalidInput failures).
 */
export function checkTablePieces(database: string, table: string, pieces: unknown): TablePieces {
  if (!Array.isArray(pieces)) throw new Error('pieces must be an array of manifest pieces');
  const prefix = `${database}.${table}/`;
  let schema: BackupPiece | undefined;
  const partitions: PartitionPiece[] = [];
  const seen = new Set<string>();
  pieces.forEach((raw: unknown, i) => {
    const piece = raw as Partial<BackupPiece> | null;
    if (!piece || typeof piece !== 'object') throw new Error(`pieces[${i}] is not a manifest piece`);
    if (piece.component !== 'clickhouse') throw new Error(`pieces[${i}] (${String(piece.name)}) is not a clickhouse piece`);
    if (typeof piece.name !== 'string' || !piece.name.startsWith(prefix)) {
      throw new Error(`pieces[${i}] (${JSON.stringify(piece.name)}) does not belong to ${database}.${table}`);
    }
    if (typeof piece.key !== 'string' || piece.key === '') throw new Error(`pieces[${i}] (${piece.name}) has no object key`);
    if (typeof piece.size !== 'number' || !Number.isSafeInteger(piece.size) || piece.size < 0) {
      throw new Error(`pieces[${i}] (${piece.name}) has no valid size`);
    }
    const part = piece.name.slice(prefix.length);
    if (part === 'schema') {
      if (schema) throw new Error(`pieces: more than one schema piece for ${database}.${table}`);
      schema = piece as BackupPiece;
      return;
    }
    const partitionId = piece.details?.partitionId;
    if (typeof partitionId !== 'string' || partitionId !== part) {
      throw new Error(`pieces[${i}] (${piece.name}): details.partitionId ${JSON.stringify(partitionId)} does not match its name`);
    }
    if (typeof piece.rows !== 'number' || !Number.isSafeInteger(piece.rows) || piece.rows < 0) {
      throw new Error(`pieces[${i}] (${piece.name}) has no valid row count`);
    }
    if (seen.has(partitionId)) throw new Error(`pieces: partition ${partitionId} of ${database}.${table} is listed twice`);
    seen.add(partitionId);
    partitions.push({ piece: piece as BackupPiece, partitionId, rows: piece.rows });
  });
  if (!schema) throw new Error(`pieces: no schema piece (${prefix}schema) for ${database}.${table}`);
  const dataExported = schema.details?.dataExported !== false;
  if (!dataExported && partitions.length > 0) {
    throw new Error(`pieces: ${database}.${table} was backed up as schema only, yet ${partitions.length} partition piece(s) are listed`);
  }
  const engine = typeof schema.details?.engine === 'string' ? schema.details.engine : '';
  return { schema, partitions, dataExported, engine };
}

/** Names for restore targets: valid, and never a system database. */
export function checkTargetDatabase(name: unknown): string {
  validateName(name, 'targetDatabase');
  if (RESERVED_DATABASES.includes(name as string)) throw new Error(`targetDatabase ${JSON.stringify(name)} is a system database`);
  return name as string;
}
