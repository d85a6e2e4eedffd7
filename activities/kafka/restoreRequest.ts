import type { S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/activity';
import { backupIdProblem } from '../../contracts/backupId';
import type { BackupPiece } from '../../contracts/backupTypes';
import { Failure } from '../../contracts/failures';
import { backupPrefix, getJson } from '../storage/backupObjects';
import {
  BACKUP_GROUP_PREFIX,
  KAFKA_METADATA_FORMAT,
  isInternalTopic,
  isValidTopicName,
  type KafkaMetadataBackup,
  type KafkaTopicMetadata,
} from './backupFormat';
import type { PieceRange } from './restoreOffsets';

export interface KafkaRestoreRequest {
  backupId: string;
  /** The backup's 'metadata' piece (backups/<backupId>/kafka/metadata.json). */
  metadata: BackupPiece;
  /** The data pieces (`${topic}/${partition}`) of the topics whose messages are restored. */
  topicPieces: BackupPiece[];
  /** Appended to every topic name and group id; '' restores under the original names. */
  suffix: string;
  /**
   * Optional: restore only these source topics (and only group offsets on them). Default: every
   * topic the metadata marks neededForRestore.
   */
  topics?: string[];
}

export interface KafkaRestoreTargetsRequest {
  metadata: BackupPiece;
  suffix: string;
  /** Optional: the same topic selection the restore was given. */
  topics?: string[];
}

// The plan: what a request restores, validated before anything changes

export interface PlannedPiece {
  piece: BackupPiece;
  partition: number;
  range: PieceRange;
}

export interface PlannedTopic {
  source: KafkaTopicMetadata;
  target: string;
  /** Data pieces by partition. */
  pieces: Map<number, PlannedPiece>;
}

export interface PlannedGroup {
  source: string;
  target: string;
  offsets: { topic: PlannedTopic; partitions: { partition: number; offset: string }[] }[];
}

export interface Plan {
  topics: PlannedTopic[];
  groups: PlannedGroup[];
  notes: string[];
  metadataBytes: number;
}

export function invalid(activity: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${activity}: ${message}`, Failure.InvalidInput);
}

export function checkSuffix(activity: string, suffix: unknown): string {
  if (typeof suffix !== 'string' || !/^[A-Za-z0-9._-]*$/.test(suffix)) {
    throw invalid(activity, `suffix: ${JSON.stringify(suffix)} may only hold letters, digits, '.', '_' and '-'`);
  }
  return suffix;
}

/** The backup folder a metadata piece must be in: backups/<backupId>/ when the id is given. */
export function checkMetadataPiece(activity: string, metadata: unknown, backupId?: string): { piece: BackupPiece; prefix: string } {
  const piece = metadata as BackupPiece | undefined;
  if (!piece || typeof piece !== 'object' || typeof piece.key !== 'string') {
    throw invalid(activity, 'metadata: a backup piece with a key is required');
  }
  let prefix: string;
  if (backupId !== undefined) {
    const problem = backupIdProblem(backupId);
    if (problem) throw invalid(activity, problem);
    prefix = backupPrefix(backupId);
  } else {
    const folder = /^backups\/([^/]+)\//.exec(piece.key)?.[1];
    if (folder === undefined || backupIdProblem(folder)) throw invalid(activity, `metadata: key ${JSON.stringify(piece.key)} is not in a backup folder`);
    prefix = backupPrefix(folder);
  }
  if (!piece.key.startsWith(prefix) || piece.key.includes('/../')) {
    throw invalid(activity, `metadata: key ${JSON.stringify(piece.key)} is not under ${prefix}`);
  }
  if (piece.component !== undefined && piece.component !== 'kafka') {
    throw invalid(activity, `metadata: piece of component ${JSON.stringify(piece.component)}, not kafka`);
  }
  return { piece, prefix };
}

export function checkTopicSelection(activity: string, topics: unknown): Set<string> | undefined {
  if (topics === undefined || topics === null) return undefined;
  if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string' || !isValidTopicName(t))) {
    throw invalid(activity, `topics: must be a list of Kafka topic names, got ${JSON.stringify(topics)}`);
  }
  return new Set(topics as string[]);
}

export async function readMetadata(activity: string, s3: S3Client, bucket: string, piece: BackupPiece): Promise<{ doc: KafkaMetadataBackup; bytes: number }> {
  const doc = await getJson<KafkaMetadataBackup>(s3, bucket, piece.key);
  if (!doc) throw ApplicationFailure.nonRetryable(`${activity}: metadata: ${piece.key} not found in bucket ${bucket}`, Failure.BackupNotFound);
  if (doc.format !== KAFKA_METADATA_FORMAT || !Array.isArray(doc.topics) || !Array.isArray(doc.groups)) {
    throw ApplicationFailure.nonRetryable(`${activity}: metadata: ${piece.key} is not a Kafka metadata backup`, Failure.InvalidBackup);
  }
  return { doc, bytes: piece.size ?? 0 };
}

/**
 * Topics, data pieces and group offsets a request restores. Throws InvalidInput for anything
 * that would not name a valid target or is not part of the backup.
 */
export function makePlan(
  activity: string,
  doc: KafkaMetadataBackup,
  suffix: string,
  selection: Set<string> | undefined,
  topicPieces: BackupPiece[],
  prefix: string | undefined,
): Omit<Plan, 'metadataBytes'> {
  const notes: string[] = [];
  const byName = new Map(doc.topics.map((t) => [t.name, t]));
  if (selection) {
    for (const name of selection) {
      const t = byName.get(name);
      if (!t) throw invalid(activity, `topics: ${JSON.stringify(name)} is not in the backup's metadata`);
      if (!t.neededForRestore || t.internal || isInternalTopic(name)) throw invalid(activity, `topics: ${JSON.stringify(name)} is an internal topic`);
    }
  }
  const topics: PlannedTopic[] = [];
  for (const t of doc.topics) {
    if (!t.neededForRestore || t.internal || isInternalTopic(t.name)) continue;
    if (selection && !selection.has(t.name)) continue;
    const target = t.name + suffix;
    if (!isValidTopicName(target)) throw invalid(activity, `suffix: topic ${JSON.stringify(t.name)} + suffix is not a valid Kafka topic name (${JSON.stringify(target)})`);
    topics.push({ source: t, target, pieces: new Map() });
  }
  const planned = new Map(topics.map((t) => [t.source.name, t]));

  for (const [i, piece] of topicPieces.entries()) {
    if (!piece || typeof piece !== 'object' || typeof piece.key !== 'string' || typeof piece.name !== 'string') {
      throw invalid(activity, `topicPieces[${i}]: not a backup piece`);
    }
    if (prefix !== undefined && !piece.key.startsWith(prefix)) throw invalid(activity, `topicPieces[${i}]: key ${JSON.stringify(piece.key)} is not under ${prefix}`);
    const d = (piece.details ?? {}) as Record<string, unknown>;
    const slash = piece.name.lastIndexOf('/');
    const topic = typeof d.topic === 'string' ? d.topic : piece.name.slice(0, slash);
    const partition = typeof d.partition === 'number' ? d.partition : Number(piece.name.slice(slash + 1));
    if (!isValidTopicName(topic) || !Number.isInteger(partition) || partition < 0) {
      throw invalid(activity, `topicPieces[${i}]: ${JSON.stringify(piece.name)} does not name a topic partition`);
    }
    if (typeof d.lowOffset !== 'string' || typeof d.highOffset !== 'string' || !/^-?\d+$/.test(d.lowOffset) || !/^-?\d+$/.test(d.highOffset)) {
      throw invalid(activity, `topicPieces[${i}]: ${piece.name} has no lowOffset/highOffset details`);
    }
    const pt = planned.get(topic);
    if (!pt) {
      if (selection && !selection.has(topic)) continue;
      notes.push(`topic ${topic}: data pieces given but the topic is not in the backup's metadata (or not restorable): its data was not restored`);
      continue;
    }
    if (partition >= pt.source.partitions) throw invalid(activity, `topicPieces[${i}]: partition ${partition} of ${topic}, which had ${pt.source.partitions}`);
    if (pt.pieces.has(partition)) throw invalid(activity, `topicPieces[${i}]: a second piece for ${piece.name}`);
    pt.pieces.set(partition, { piece, partition, range: { lowOffset: d.lowOffset, highOffset: d.highOffset, messages: piece.messages ?? 0 } });
  }

  const groups: PlannedGroup[] = [];
  for (const g of doc.groups) {
    if (g.groupId.startsWith(BACKUP_GROUP_PREFIX)) continue;
    const offsets: PlannedGroup['offsets'] = [];
    for (const o of g.offsets) {
      const t = planned.get(o.topic);
      if (!t) continue;
      const partitions = o.partitions.filter((p) => p.offset !== '-1' && /^\d+$/.test(p.offset)).map((p) => ({ partition: p.partition, offset: p.offset }));
      if (partitions.length) offsets.push({ topic: t, partitions });
    }
    if (offsets.length) groups.push({ source: g.groupId, target: g.groupId + suffix, offsets });
  }
  return { topics, groups, notes };
}

/**
 * Validates a request and reads its metadata. With `idFromKey` (verification only reads) an empty
 * backupId is allowed: the backup folder is then the metadata piece's own.
 */
export async function loadPlan(activity: string, s3: S3Client, bucket: string, req: KafkaRestoreRequest, idFromKey = false): Promise<Plan> {
  const r = (req ?? {}) as Partial<KafkaRestoreRequest>;
  const fromKey = idFromKey && (r.backupId === undefined || r.backupId === '');
  if (!fromKey && typeof r.backupId !== 'string') throw invalid(activity, 'backupId: required');
  const { piece, prefix } = checkMetadataPiece(activity, r.metadata, fromKey ? undefined : r.backupId);
  const suffix = checkSuffix(activity, r.suffix);
  if (!Array.isArray(r.topicPieces)) throw invalid(activity, 'topicPieces: a list of backup pieces is required');
  const selection = checkTopicSelection(activity, r.topics);
  const { doc, bytes } = await readMetadata(activity, s3, bucket, piece);
  return { ...makePlan(activity, doc, suffix, selection, r.topicPieces, prefix), metadataBytes: bytes };
}
