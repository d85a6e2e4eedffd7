/**
 * What a restore checks in a manifest before trusting anything it says: its signature, its shape,
 * that it is the manifest of the backup whose folder it is in, and that every object it names
 * lies in that folder. Pure: unit-tested; the caller turns a ManifestRefusal into a failure.
 */
import { z } from 'zod';
import { COMPONENTS, type BackupManifest } from '../../contracts/backupTypes';
import { backupIdProblem, backupIdTime } from '../../contracts/backupId';
import { manifestAuthenticity } from './manifestSignature';

/** Why a manifest is not trusted; `unsigned` when that is the only reason (allowUnsignedBackup would accept it). */
export class ManifestRefusal extends Error {
  constructor(
    message: string,
    readonly unsigned = false,
  ) {
    super(message);
    this.name = 'ManifestRefusal';
  }
}

const isoTime = z.string().min(1);
const count = z.number().int().min(0);
const skippedSchema = z.object({ component: z.enum(COMPONENTS), reason: z.string() });

const pieceSchema = z.object({
  component: z.enum(COMPONENTS),
  name: z.string().min(1),
  key: z.string().min(1),
  size: count,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits').optional(),
  etag: z.string().optional(),
  rows: count.optional(),
  messages: count.optional(),
  snapshotAt: isoTime,
  startedAt: isoTime,
  finishedAt: isoTime,
  durationMs: z.number().min(0),
  referencedFrom: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const manifestSchema = z.object({
  formatVersion: z.literal(1),
  backupId: z.string().min(1),
  environment: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  startedAt: isoTime,
  finishedAt: isoTime,
  consistencyPoint: isoTime,
  serverVersions: z.record(z.string(), z.string()),
  components: z.array(
    z.object({
      component: z.enum(COMPONENTS),
      pieces: count,
      bytes: count,
      rows: count,
      messages: count,
      durationMs: z.number().min(0),
      startedAt: isoTime,
      finishedAt: isoTime,
    }),
  ),
  skipped: z.array(skippedSchema),
  previousBackupId: z.string().optional(),
  totals: z.object({ pieces: count, bytes: count, rows: count, messages: count }),
  pieces: z.array(pieceSchema),
  complete: z.boolean().optional(),
  lacks: z.array(skippedSchema).optional(),
  signature: z.object({ algorithm: z.literal('HMAC-SHA256'), keyId: z.string(), value: z.string() }).optional(),
});

/** Why `key` is not an object of backup `backupId`'s own folder, or undefined. */
export function pieceKeyProblem(key: string, backupId: string): string | undefined {
  const folder = `backups/${backupId}/`;
  if (!key.startsWith(folder)) return `${JSON.stringify(key)} lies outside the backup's folder ${folder}`;
  // Keys ballast writes have none of these; a "..", once normalised by some HTTP layer, climbs out.
  if (key.slice(folder.length).split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return `${JSON.stringify(key)} has an empty, "." or ".." path segment`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return `${JSON.stringify(key)} holds control characters`;
  return undefined;
}

/**
 * Why the stored copy of object `objectKey` of `bucket`, at `storedAt`, is not where a backup
 * keeps it, or undefined. Copies live in `backups/<id>/objects/<bucket>/data/<object key>`: this
 * backup's, or, for an object unchanged since, the earlier backup's that `referencedFrom` names.
 */
export function storedCopyProblem(
  object: { key: string; storedAt: string; referencedFrom?: string },
  bucket: string,
  backupId: string,
): string | undefined {
  const holder = object.referencedFrom ?? backupId;
  const idProblem = backupIdProblem(holder);
  if (idProblem) return `the copy of ${bucket}/${object.key} is said to be in backup ${JSON.stringify(holder)}: ${idProblem}`;
  if (object.referencedFrom !== undefined && isNotOlder(object.referencedFrom, backupId)) {
    return `the copy of ${bucket}/${object.key} is said to be in backup ${holder}, which is not older than ${backupId}`;
  }
  const expected = `backups/${holder}/objects/${encodeURIComponent(bucket)}/data/${object.key}`;
  if (object.storedAt !== expected) {
    return `the copy of ${bucket}/${object.key} is at ${JSON.stringify(object.storedAt)}, not at ${expected}`;
  }
  // The object's own key follows the data folder as is; S3 allows "..", but no such key is followed.
  if (object.key.split('/').some((s) => s === '.' || s === '..')) return `${bucket}/${object.key} has a "." or ".." path segment`;
  return undefined;
}

/** Only ids made by ballast tell their time; the same id is never older than itself. */
function isNotOlder(earlier: string, id: string): boolean {
  const [a, b] = [backupIdTime(earlier), backupIdTime(id)];
  return earlier === id || (a !== undefined && b !== undefined && a.getTime() > b.getTime());
}

export interface CheckedManifest {
  manifest: BackupManifest;
  /** The id of the key that signed it; undefined for an unsigned manifest accepted on request. */
  keyId?: string;
}

/**
 * Checks manifest.json of backup `backupId` as parsed: signed by one of `keys` (or unsigned and
 * `allowUnsigned`), well-formed, naming itself `backupId`, with every piece's object in the
 * backup's own folder. Throws a ManifestRefusal naming the first problem found.
 */
export function checkManifest(raw: unknown, options: { backupId: string; keys: readonly string[]; allowUnsigned: boolean }): CheckedManifest {
  const { backupId } = options;
  const refuse = (why: string, unsigned = false): never => {
    throw new ManifestRefusal(`backup ${backupId} is not authentic: ${why}`, unsigned);
  };
  const authenticity = manifestAuthenticity(raw, options.keys);
  if (authenticity.kind === 'refused') refuse(`its manifest.json is refused: ${authenticity.problem}`);
  if (authenticity.kind === 'unsigned' && !options.allowUnsigned) {
    refuse(
      'its manifest.json is unsigned, so nothing shows that ballast wrote it as it is (backups written before manifests were signed, ' +
        'or by a worker without backup.manifestKey, are unsigned: set allowUnsignedBackup, naming the backup, to restore one anyway)',
      true,
    );
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    refuse(`its manifest.json is malformed at ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
  }
  const manifest = parsed.data as BackupManifest;
  if (manifest.backupId !== backupId) refuse(`the manifest.json in its folder is backup ${JSON.stringify(manifest.backupId)}'s`);
  for (const piece of manifest.pieces) {
    const problem = pieceKeyProblem(piece.key, backupId);
    if (problem) refuse(`piece ${piece.component} ${JSON.stringify(piece.name)}: ${problem}`);
  }
  return { manifest, keyId: authenticity.kind === 'signed' ? authenticity.keyId : undefined };
}
