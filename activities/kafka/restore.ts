import { StringDecoder } from 'node:string_decoder';
import { pipeline, Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Admin, IHeaders, Message, Producer } from 'kafkajs';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { backupIdProblem } from '../../contracts/backupId';
import { backupPrefix, getJson } from '../storage/backupObjects';
import { cancellationReason } from '../common/cancellation';
import { chunks } from '../common/chunks';
import type { ActivityDeps } from '../deps';
import {
  BACKUP_GROUP_PREFIX,
  KAFKA_METADATA_FORMAT,
  decodeMessageLine,
  isInternalTopic,
  isValidTopicName,
  type KafkaMetadataBackup,
  type KafkaTopicMetadata,
} from './backupFormat';
import { retryOnLeaderChange, waitForLeaders } from './topics';
import { mapLimit } from '../../contracts/concurrency';
import { Failure } from '../../contracts/failures';

/**
 * Restores a Kafka backup (activities/kafka/backup.ts): topics with their partition counts and
 * config overrides, the saved messages of the topics whose data was backed up, and consumer-group
 * offsets, under the original names (suffix '') or beside them (a drill's suffix).
 *
 * Offsets are not preserved: message i of a partition's backup becomes offset (base + i) of the
 * target partition, where base is the partition's offset when this restore started filling it.
 * Committed group offsets of restored partitions are translated accordingly (restoredGroupOffset).
 */

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

/**
 * What restoreKafka heartbeats, and a retried attempt resumes from. Partition keys are
 * `${targetTopic}/${partition}`.
 */
export interface KafkaRestoreHeartbeat {
  phase: 'topics' | 'data' | 'groups' | 'done';
  /** Target topics this restore created. */
  createdTopics: string[];
  /**
   * Target partitions this restore owns (empty when first seen, or in a topic it created), each
   * with the offset its first restored message got: a retry skips (high - base) backup lines.
   */
  owned: Record<string, string>;
  /** Owned partitions completely produced. */
  filled: string[];
  messages: number;
  bytes: number;
}

/** A data piece's captured range: its messages were read from [lowOffset, highOffset). */
export interface PieceRange {
  lowOffset: string;
  highOffset: string;
  messages: number;
}

export interface GroupOffsetInput {
  /** The committed offset in the backup. */
  savedOffset: string;
  /**
   * Set when the partition's messages were restored by this restore: the piece's range, and, for
   * a piece with offset gaps (transactions, compaction), how many backed-up messages have an
   * offset below savedOffset (needed only when savedOffset is inside the range).
   */
  data?: { range: PieceRange; messagesBelow?: number };
  /** The target partition's log range now (after the data was restored). */
  targetLow: string;
  targetHigh: string;
}

export interface GroupOffsetResult {
  /** The offset to commit. */
  offset: string;
  /** What translation asked for before clamping. */
  wanted: string;
  clamped: boolean;
}

const DATA_CONCURRENCY = 4;
const BATCH_MESSAGES = 500;
const BATCH_BYTES = 1024 * 1024;
const HEARTBEAT_EVERY_MS = 1_000;
const TOPIC_CHUNK = 50;

// ---------------------------------------------------------------------------------------------
// Pure offset logic

/** Whether a piece's messages fill its range without gaps: offset = lowOffset + index. */
export function isGapFree(range: PieceRange): boolean {
  return BigInt(range.highOffset) - BigInt(range.lowOffset) === BigInt(range.messages);
}

/**
 * The index into the backup (0 = its first message) that a committed offset points at. Below
 * the range it is negative, past the end it is beyond the message count, so the clamp notices.
 */
export function backupIndex(range: PieceRange, savedOffset: bigint, messagesBelow?: number): bigint {
  const low = BigInt(range.lowOffset);
  const high = BigInt(range.highOffset);
  if (savedOffset <= low) return savedOffset - low;
  if (savedOffset >= high) return BigInt(range.messages) + (savedOffset - high);
  if (isGapFree(range)) return savedOffset - low;
  if (messagesBelow === undefined) throw new Error('backupIndex: a piece with offset gaps needs messagesBelow');
  return BigInt(messagesBelow);
}

/**
 * The offset a restored group commits: for a partition whose data this restore wrote, the same
 * position in the restored messages (savedOffset - savedLow + targetLow on a gap-free piece);
 * otherwise the saved offset itself. Either is clamped to the target's [low, high].
 */
export function restoredGroupOffset(input: GroupOffsetInput): GroupOffsetResult {
  const low = BigInt(input.targetLow);
  const high = BigInt(input.targetHigh);
  const saved = BigInt(input.savedOffset);
  const wanted = input.data ? low + backupIndex(input.data.range, saved, input.data.messagesBelow) : saved;
  const offset = wanted < low ? low : wanted > high ? high : wanted;
  return { offset: offset.toString(), wanted: wanted.toString(), clamped: offset !== wanted };
}

/** The note of a clamped offset. */
export function clampNote(group: string, topic: string, partition: number, savedOffset: string, r: GroupOffsetResult, low: string, high: string): string {
  const translated = r.wanted !== savedOffset ? ` (translated ${r.wanted})` : '';
  return `group ${group} topic ${topic} partition ${partition}: saved ${savedOffset}${translated}, clamped to ${r.offset} (log range ${low}..${high})`;
}

// ---------------------------------------------------------------------------------------------
// The plan: what a request restores, validated before anything changes

interface PlannedPiece {
  piece: BackupPiece;
  partition: number;
  range: PieceRange;
}

interface PlannedTopic {
  source: KafkaTopicMetadata;
  target: string;
  /** Data pieces by partition. */
  pieces: Map<number, PlannedPiece>;
}

interface PlannedGroup {
  source: string;
  target: string;
  offsets: { topic: PlannedTopic; partitions: { partition: number; offset: string }[] }[];
}

interface Plan {
  topics: PlannedTopic[];
  groups: PlannedGroup[];
  notes: string[];
  metadataBytes: number;
}

function invalid(activity: string, message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${activity}: ${message}`, Failure.InvalidInput);
}

function checkSuffix(activity: string, suffix: unknown): string {
  if (typeof suffix !== 'string' || !/^[A-Za-z0-9._-]*$/.test(suffix)) {
    throw invalid(activity, `suffix: ${JSON.stringify(suffix)} may only hold letters, digits, '.', '_' and '-'`);
  }
  return suffix;
}

/** The backup folder a metadata piece must be in: backups/<backupId>/ when the id is given. */
function checkMetadataPiece(activity: string, metadata: unknown, backupId?: string): { piece: BackupPiece; prefix: string } {
  const piece = metadata as BackupPiece | undefined;
  if (!piece || typeof piece !== 'object' || typeof piece.key !== 'string') {
    throw invalid(activity, 'metadata: a backup piece with a key is required');
  }
  let prefix: string;
  if (backupId !== undefined) {
    const problem = backupIdProblem(backupId);
    if (problem) throw invalid(activity, `backupId: ${problem}`);
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

function checkTopicSelection(activity: string, topics: unknown): Set<string> | undefined {
  if (topics === undefined || topics === null) return undefined;
  if (!Array.isArray(topics) || topics.some((t) => typeof t !== 'string' || !isValidTopicName(t))) {
    throw invalid(activity, `topics: must be a list of Kafka topic names, got ${JSON.stringify(topics)}`);
  }
  return new Set(topics as string[]);
}

async function readMetadata(activity: string, s3: S3Client, bucket: string, piece: BackupPiece): Promise<{ doc: KafkaMetadataBackup; bytes: number }> {
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
function makePlan(
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
async function loadPlan(activity: string, s3: S3Client, bucket: string, req: KafkaRestoreRequest, idFromKey = false): Promise<Plan> {
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

// ---------------------------------------------------------------------------------------------
// Activities

export function createKafkaRestoreActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const bucket = config.objectStore.backupBucket;

  return {
    async restoreKafka(req: KafkaRestoreRequest): Promise<RestoreStepResult> {
      const activity = 'restoreKafka';
      const ctx = Context.current();
      const started = Date.now();
      const s3 = connections.s3(300_000);
      const kafka = connections.kafka(60_000);
      const admin = kafka.admin();
      let producer: Producer | undefined;
      try {
        const plan = await loadPlan(activity, s3, bucket, req);
        const notes = [...plan.notes];
        const previous = ctx.info.attempt > 1 ? readHeartbeat(ctx.info.heartbeatDetails) : undefined;
        const state: KafkaRestoreHeartbeat = previous ?? { phase: 'topics', createdTopics: [], owned: {}, filled: [], messages: 0, bytes: 0 };
        state.bytes += plan.metadataBytes;
        let lastBeat = 0;
        const beat = (force = false) => {
          if (!force && Date.now() - lastBeat < HEARTBEAT_EVERY_MS) return;
          lastBeat = Date.now();
          ctx.heartbeat({ ...state, createdTopics: [...state.createdTopics], owned: { ...state.owned }, filled: [...state.filled] });
        };
        const checkCancelled = () => {
          if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
        };

        await admin.connect();
        // Before any change: consumers of a target group would overwrite (or refuse) its offsets.
        await checkGroupsIdle(activity, admin, plan.groups.map((g) => g.target));
        const liveBrokers = (await admin.describeCluster()).brokers.length;
        checkCancelled();

        // --- topics
        const existing = new Set(await admin.listTopics());
        const created = new Set(state.createdTopics);
        const toCreate = plan.topics.filter((t) => !existing.has(t.target) && t.source.partitions >= 1);
        for (const t of plan.topics) {
          if (!existing.has(t.target) && t.source.partitions < 1) notes.push(`topic ${t.target}: the backup records no partitions: not created`);
        }
        for (const t of toCreate) {
          checkCancelled();
          let rf = t.source.replicationFactor;
          if (rf > liveBrokers) {
            notes.push(`topic ${t.target}: replication factor ${rf} capped to ${liveBrokers}, the number of live brokers`);
            rf = liveBrokers;
          }
          const configEntries: { name: string; value: string }[] = [];
          for (const [name, value] of Object.entries(t.source.configs ?? {})) {
            if (value === null) notes.push(`topic ${t.target}: config ${name} was sensitive (not readable at backup time): not restored`);
            else configEntries.push({ name, value });
          }
          const made = await admin.createTopics({
            waitForLeaders: false,
            topics: [{ topic: t.target, numPartitions: t.source.partitions, ...(rf > 0 ? { replicationFactor: rf } : {}), configEntries }],
          });
          if (made) {
            created.add(t.target);
            state.createdTopics = [...created];
            beat(true);
          }
        }
        const restoredTopics = plan.topics.filter((t) => existing.has(t.target) || toCreate.includes(t));
        const topicNames = restoredTopics.map((t) => t.target);
        if (toCreate.length) await waitForTopics(admin, toCreate.map((t) => t.target));
        const partitionCounts = await fetchPartitionCounts(admin, topicNames);
        for (const t of restoredTopics) {
          const count = partitionCounts.get(t.target);
          if (count !== undefined && !created.has(t.target) && count !== t.source.partitions) {
            notes.push(`topic ${t.target}: exists with ${count} partitions, the backup had ${t.source.partitions}: left as it is`);
          }
        }

        // --- data: decide which partitions this restore owns, record that, then fill them
        state.phase = 'data';
        interface FillJob {
          topic: PlannedTopic;
          piece: PlannedPiece;
          key: string;
          base: bigint;
        }
        const jobs: FillJob[] = [];
        for (const t of restoredTopics) {
          if (!t.pieces.size) continue;
          const count = partitionCounts.get(t.target);
          if (count === undefined) {
            notes.push(`topic ${t.target}: not found after creation: its data was not restored`);
            continue;
          }
          const offsets = await retryOnLeaderChange(admin, [t.target], () => admin.fetchTopicOffsets(t.target));
          for (const piece of [...t.pieces.values()].sort((a, b) => a.partition - b.partition)) {
            const key = `${t.target}/${piece.partition}`;
            const o = offsets.find((x) => x.partition === piece.partition);
            if (!o || piece.partition >= count) {
              notes.push(`topic ${t.target} partition ${piece.partition}: does not exist in the target: ${piece.range.messages} backed-up messages not restored`);
              continue;
            }
            const low = BigInt(o.low);
            const high = BigInt(o.high);
            const earlier = state.owned[key];
            if (earlier !== undefined && high >= BigInt(earlier)) {
              jobs.push({ topic: t, piece, key, base: BigInt(earlier) });
            } else if (created.has(t.target) || low === high) {
              state.owned[key] = low.toString();
              jobs.push({ topic: t, piece, key, base: low });
            } else {
              notes.push(
                `topic ${t.target} partition ${piece.partition}: not empty (log range ${o.low}..${o.high}) and not filled by this restore: ` +
                  `its ${piece.range.messages} backed-up messages were not restored (never appended twice)`,
              );
            }
          }
          // Ownership is recorded before a single message is produced.
          beat(true);
        }

        const todo = jobs.filter((j) => !state.filled.includes(j.key));
        if (todo.length) {
          producer = kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
            retry: { retries: 20, initialRetryTime: 300, maxRetryTime: 10_000 },
          });
          await producer.connect();
          const p = producer;
          await mapLimit(todo, DATA_CONCURRENCY, async (job) => {
            checkCancelled();
            const offsets = await retryOnLeaderChange(admin, [job.topic.target], () => admin.fetchTopicOffsets(job.topic.target));
            const o = offsets.find((x) => x.partition === job.piece.partition)!;
            const already = BigInt(o.high) - job.base;
            const total = BigInt(job.piece.range.messages);
            if (already > total) {
              notes.push(
                `topic ${job.topic.target} partition ${job.piece.partition}: holds ${already} messages since the restore started, more than the ${total} backed up: not filled further`,
              );
            }
            if (already < total) {
              const skip = Number(already);
              if (skip > 0) notes.push(`topic ${job.topic.target} partition ${job.piece.partition}: resumed after ${skip} messages restored by an earlier attempt`);
              const written = await fillPartition({
                s3,
                bucket,
                producer: p,
                topic: job.topic.target,
                partition: job.piece.partition,
                piece: job.piece.piece,
                skip,
                signal: ctx.cancellationSignal,
                checkCancelled,
                onBytes: (n) => {
                  state.bytes += n;
                  beat();
                },
                onMessages: (n) => {
                  state.messages += n;
                  beat();
                },
              });
              if (written.lines !== job.piece.range.messages) {
                notes.push(
                  `topic ${job.topic.target} partition ${job.piece.partition}: the piece holds ${written.lines} messages, its record says ${job.piece.range.messages}`,
                );
              }
            }
            state.filled.push(job.key);
            beat(true);
          });
          await producer.disconnect();
          producer = undefined;
        }

        // --- consumer groups
        state.phase = 'groups';
        beat(true);
        const ownedNow = new Set(Object.keys(state.owned));
        const ranges = new Map<string, Map<number, { low: string; high: string }>>();
        for (const t of restoredTopics) {
          if (!partitionCounts.has(t.target)) continue;
          if (!plan.groups.some((g) => g.offsets.some((o) => o.topic === t))) continue;
          const offsets = await retryOnLeaderChange(admin, [t.target], () => admin.fetchTopicOffsets(t.target));
          ranges.set(t.target, new Map(offsets.map((o) => [o.partition, { low: o.low, high: o.high }])));
        }
        const below = await countBelowForGroups(s3, bucket, plan, (t, p) => ownedNow.has(`${t.target}/${p}`), ctx.cancellationSignal);
        await checkGroupsIdle(activity, admin, plan.groups.map((g) => g.target));
        for (const g of plan.groups) {
          for (const o of g.offsets) {
            checkCancelled();
            const range = ranges.get(o.topic.target);
            if (!range) {
              notes.push(`group ${g.target} topic ${o.topic.target}: the topic is missing: offsets not restored`);
              continue;
            }
            const partitions: { partition: number; offset: string }[] = [];
            for (const saved of o.partitions) {
              const r = range.get(saved.partition);
              if (!r) {
                notes.push(`group ${g.target} topic ${o.topic.target} partition ${saved.partition}: no such partition in the target: offset ${saved.offset} not restored`);
                continue;
              }
              const restored = ownedNow.has(`${o.topic.target}/${saved.partition}`);
              const result = translate(o.topic, saved.partition, saved.offset, restored, r, below);
              if (result.clamped) notes.push(clampNote(g.target, o.topic.target, saved.partition, saved.offset, result, r.low, r.high));
              partitions.push({ partition: saved.partition, offset: result.offset });
            }
            if (!partitions.length) continue;
            try {
              await retryOnLeaderChange(admin, [o.topic.target], () => admin.setOffsets({ groupId: g.target, topic: o.topic.target, partitions }));
            } catch (err) {
              if (/no running instances/.test((err as Error).message ?? '')) throw activeGroupFailure(activity, g.target, (err as Error).message);
              throw err;
            }
          }
          ctx.heartbeat({ ...state, group: g.target });
        }

        state.phase = 'done';
        beat(true);
        return {
          component: 'kafka',
          unit: 'kafka',
          bytes: state.bytes,
          messages: state.messages,
          durationMs: Date.now() - started,
          ...(previous !== undefined ? { resumed: true } : {}),
          notes,
        };
      } finally {
        if (producer) await producer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
        s3.destroy();
      }
    },

    async verifyKafka(req: KafkaRestoreRequest): Promise<VerifyResult> {
      const activity = 'verifyKafka';
      const ctx = Context.current();
      const s3 = connections.s3(300_000);
      const admin = connections.kafka(60_000).admin();
      try {
        const plan = await loadPlan(activity, s3, bucket, req, true);
        const checks: VerifyCheck[] = [];
        await admin.connect();
        const existing = new Set(await admin.listTopics());
        const present = plan.topics.filter((t) => existing.has(t.target));
        const counts = await fetchPartitionCounts(admin, present.map((t) => t.target));
        const ranges = new Map<string, Map<number, { low: string; high: string }>>();
        for (const t of plan.topics) {
          if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
          const count = counts.get(t.target);
          checks.push({ name: `topic ${t.target}: partitions`, expected: t.source.partitions, actual: count ?? 'missing', ok: count === t.source.partitions });
          if (count === undefined) continue;
          const offsets = await retryOnLeaderChange(admin, [t.target], () => admin.fetchTopicOffsets(t.target));
          const range = new Map(offsets.map((o) => [o.partition, { low: o.low, high: o.high }]));
          ranges.set(t.target, range);
          ctx.heartbeat({ phase: 'topics', topic: t.target });
          if (!t.pieces.size) continue;
          const expected = [...t.pieces.values()].reduce((n, p) => n + p.range.messages, 0);
          const actual = offsets.reduce((n, o) => n + Number(BigInt(o.high) - BigInt(o.low)), 0);
          checks.push({ name: `topic ${t.target}: messages (at least the backup's)`, expected, actual, ok: actual >= expected });
          for (const p of t.pieces.values()) {
            const r = range.get(p.partition);
            const inPartition = r ? Number(BigInt(r.high) - BigInt(r.low)) : 0;
            if (inPartition < p.range.messages) {
              checks.push({ name: `topic ${t.target} partition ${p.partition}: messages (at least the backup's)`, expected: p.range.messages, actual: inPartition, ok: false });
            }
          }
        }
        const below = await countBelowForGroups(s3, bucket, plan, (t, p) => t.pieces.has(p), ctx.cancellationSignal);
        for (const g of plan.groups) {
          if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
          for (const o of g.offsets) {
            const range = ranges.get(o.topic.target);
            const committed = range
              ? await retryOnLeaderChange(admin, [o.topic.target], () => admin.fetchOffsets({ groupId: g.target, topics: [o.topic.target] }))
              : [];
            const byPartition = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
            for (const saved of o.partitions) {
              const name = `group ${g.target} topic ${o.topic.target} partition ${saved.partition}: committed offset`;
              const r = range?.get(saved.partition);
              if (!r) {
                checks.push({ name, expected: 'a restored partition', actual: range ? 'no such partition' : 'topic missing', ok: false });
                continue;
              }
              const expected = translate(o.topic, saved.partition, saved.offset, o.topic.pieces.has(saved.partition), r, below).offset;
              const actual = byPartition.get(saved.partition) ?? '-1';
              checks.push({ name, expected, actual, ok: actual === expected });
            }
          }
          ctx.heartbeat({ phase: 'groups', group: g.target });
        }
        return { component: 'kafka', unit: 'kafka', ok: checks.every((c) => c.ok), checks };
      } finally {
        await admin.disconnect().catch(() => undefined);
        s3.destroy();
      }
    },

    async deleteKafkaRestoreTargets(req: KafkaRestoreTargetsRequest): Promise<{ topics: string[]; groups: string[] }> {
      const activity = 'deleteKafkaRestoreTargets';
      const r = (req ?? {}) as Partial<KafkaRestoreTargetsRequest>;
      const suffix = checkSuffix(activity, r.suffix);
      if (suffix === '') throw invalid(activity, "suffix: refusing to delete with an empty suffix: the targets would be the production topics and groups");
      const { piece: metadata } = checkMetadataPiece(activity, r.metadata);
      const selection = checkTopicSelection(activity, r.topics);
      const s3 = connections.s3();
      const admin = connections.kafka(60_000).admin();
      try {
        const { doc } = await readMetadata(activity, s3, bucket, metadata);
        const plan = makePlan(activity, doc, suffix, selection, [], undefined);
        await admin.connect();

        const groupTargets = new Set(plan.groups.map((g) => g.target));
        const listedGroups = (await admin.listGroups()).groups.map((g) => g.groupId);
        const groups = listedGroups.filter((g) => groupTargets.has(g)).sort();
        const deletedGroups: string[] = [];
        for (const chunk of chunks(groups, 50)) {
          deletedGroups.push(...(await deleteGroups(activity, admin, chunk)));
        }

        const topicTargets = new Set(plan.topics.map((t) => t.target));
        const topics = (await admin.listTopics()).filter((t) => topicTargets.has(t)).sort();
        for (const chunk of chunks(topics, TOPIC_CHUNK)) {
          try {
            await admin.deleteTopics({ topics: chunk, timeout: 30_000 });
          } catch (err) {
            // Someone deleted one meanwhile: delete the ones still there.
            const still = new Set(await admin.listTopics());
            const left = chunk.filter((t) => still.has(t));
            if (left.length) await admin.deleteTopics({ topics: left, timeout: 30_000 });
          }
        }
        // Deletion is asynchronous in Kafka, and each broker learns of it in its own time: a
        // drill reports its scratch topics gone only once several metadata reads in a row (from
        // whichever broker answers) no longer list them.
        const deadline = Date.now() + 120_000;
        for (let clean = 0; clean < 3; ) {
          const left = new Set(await admin.listTopics());
          const remaining = topics.filter((t) => left.has(t));
          clean = remaining.length === 0 ? clean + 1 : 0;
          if (remaining.length > 0 && Date.now() > deadline) throw new Error(`${activity}: topics still listed 120 s after deletion: ${remaining.join(', ')}`);
          Context.current().heartbeat({ waitingForDeletion: remaining });
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        return { topics, groups: deletedGroups.sort() };
      } finally {
        await admin.disconnect().catch(() => undefined);
        s3.destroy();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function translate(
  topic: PlannedTopic,
  partition: number,
  savedOffset: string,
  restored: boolean,
  r: { low: string; high: string },
  below: Map<string, number>,
): GroupOffsetResult {
  const piece = restored ? topic.pieces.get(partition) : undefined;
  return restoredGroupOffset({
    savedOffset,
    data: piece ? { range: piece.range, messagesBelow: below.get(`${topic.source.name}/${partition}/${savedOffset}`) } : undefined,
    targetLow: r.low,
    targetHigh: r.high,
  });
}

/**
 * For committed offsets inside the range of a data piece with offset gaps, counts the backed-up
 * messages below each (streaming the piece). Keys: `${sourceTopic}/${partition}/${offset}`.
 */
async function countBelowForGroups(
  s3: S3Client,
  bucket: string,
  plan: Pick<Plan, 'groups'>,
  restored: (t: PlannedTopic, partition: number) => boolean,
  signal: AbortSignal,
): Promise<Map<string, number>> {
  const wanted = new Map<string, { piece: PlannedPiece; topic: string; offsets: Set<bigint> }>();
  for (const g of plan.groups) {
    for (const o of g.offsets) {
      for (const p of o.partitions) {
        const piece = o.topic.pieces.get(p.partition);
        if (!piece || !restored(o.topic, p.partition) || isGapFree(piece.range)) continue;
        const saved = BigInt(p.offset);
        if (saved <= BigInt(piece.range.lowOffset) || saved >= BigInt(piece.range.highOffset)) continue;
        const key = `${o.topic.source.name}/${p.partition}`;
        const entry = wanted.get(key) ?? { piece, topic: o.topic.source.name, offsets: new Set<bigint>() };
        entry.offsets.add(saved);
        wanted.set(key, entry);
      }
    }
  }
  const counts = new Map<string, number>();
  for (const [key, entry] of wanted) {
    const offsets = [...entry.offsets];
    const below = new Map(offsets.map((o) => [o, 0]));
    for await (const line of pieceLines(s3, bucket, entry.piece.piece, signal, () => undefined)) {
      if (!line) continue;
      const offset = BigInt(decodeMessageLine(line).offset);
      for (const o of offsets) if (offset < o) below.set(o, below.get(o)! + 1);
    }
    for (const [o, n] of below) counts.set(`${key}/${o}`, n);
  }
  return counts;
}

/** The lines of a data piece, streamed: S3 → gunzip → lines; never the whole object in memory. */
async function* pieceLines(s3: S3Client, bucket: string, piece: BackupPiece, signal: AbortSignal, onBytes: (n: number) => void): AsyncGenerator<string> {
  if (piece.size === 0) return;
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }), { abortSignal: signal });
  const body = object.Body as Readable;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  const gunzip = createGunzip();
  const out = pipeline(body, counter, gunzip, () => undefined);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      rest += decoder.write(chunk);
      let start = 0;
      for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n', start)) {
        yield rest.slice(start, nl);
        start = nl + 1;
      }
      rest = rest.slice(start);
    }
    rest += decoder.end();
    if (rest) yield rest;
  } finally {
    if (!out.destroyed) out.destroy();
    if (!body.destroyed) body.destroy();
  }
}

interface FillRequest {
  s3: S3Client;
  bucket: string;
  producer: Producer;
  topic: string;
  partition: number;
  piece: BackupPiece;
  /** Lines already in the target (an earlier attempt's): not produced again. */
  skip: number;
  signal: AbortSignal;
  checkCancelled: () => void;
  onBytes: (n: number) => void;
  onMessages: (n: number) => void;
}

/** Produces a piece's messages, from line `skip` on, in order, to the same partition number. */
async function fillPartition(req: FillRequest): Promise<{ lines: number; produced: number }> {
  const { producer, topic, partition } = req;
  let lines = 0;
  let produced = 0;
  let batch: Message[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    req.checkCancelled();
    await producer.send({ topic, acks: -1, messages: batch });
    produced += batch.length;
    req.onMessages(batch.length);
    batch = [];
    batchBytes = 0;
  };
  for await (const line of pieceLines(req.s3, req.bucket, req.piece, req.signal, req.onBytes)) {
    if (!line) continue;
    const index = lines++;
    if (index < req.skip) continue;
    const m = decodeMessageLine(line);
    batch.push({ partition, key: m.key, value: m.value, headers: m.headers as unknown as IHeaders, timestamp: m.timestamp });
    batchBytes += line.length;
    if (batch.length >= BATCH_MESSAGES || batchBytes >= BATCH_BYTES) await flush();
  }
  await flush();
  return { lines, produced };
}

async function waitForTopics(admin: Admin, topics: string[]): Promise<void> {
  for (const chunk of chunks(topics, TOPIC_CHUNK)) await waitForLeaders(admin, chunk, 60_000);
}

async function fetchPartitionCounts(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const chunk of chunks(topics, TOPIC_CHUNK)) {
    if (!chunk.length) continue;
    const { topics: found } = await retryOnLeaderChange(admin, chunk, () => admin.fetchTopicMetadata({ topics: chunk }));
    for (const t of found) counts.set(t.name, t.partitions.length);
  }
  return counts;
}

function activeGroupFailure(activity: string, group: string, detail: string): ApplicationFailure {
  return ApplicationFailure.retryable(
    `${activity}: consumer group ${JSON.stringify(group)} has active members (${detail}): stop its consumers, then retry`,
    'GroupHasActiveMembers',
    { group },
  );
}

async function checkGroupsIdle(activity: string, admin: Admin, groups: string[]): Promise<void> {
  for (const chunk of chunks(groups, 50)) {
    if (!chunk.length) continue;
    const described = await admin.describeGroups(chunk);
    for (const g of described.groups) {
      if (g.members.length > 0) throw activeGroupFailure(activity, g.groupId, `${g.members.length} members, state ${g.state}`);
    }
  }
}

/** Deletes groups, ignoring ones already gone; a group that still has members fails (retryable). */
async function deleteGroups(activity: string, admin: Admin, groups: string[]): Promise<string[]> {
  let left = groups;
  const deleted: string[] = [];
  for (let attempt = 1; left.length; attempt++) {
    try {
      const results = await admin.deleteGroups(left);
      deleted.push(...results.map((r) => r.groupId));
      return deleted;
    } catch (err) {
      const results = (err as { groups?: { groupId: string; errorCode: number; error?: { type?: string } }[] }).groups;
      if (!results) throw err;
      const failed: string[] = [];
      for (const r of results) {
        const type = r.error?.type;
        if (!r.errorCode) deleted.push(r.groupId);
        else if (type === 'GROUP_ID_NOT_FOUND') continue;
        else if (type === 'NON_EMPTY_GROUP' && attempt >= 10) throw activeGroupFailure(activity, r.groupId, 'NON_EMPTY_GROUP');
        else failed.push(r.groupId);
      }
      if (attempt >= 10 && failed.length) throw err;
      left = failed;
      await sleep(300);
    }
  }
  return deleted;
}

function readHeartbeat(details: unknown): KafkaRestoreHeartbeat | undefined {
  const d = details as Partial<KafkaRestoreHeartbeat> | undefined;
  if (!d || typeof d !== 'object' || typeof d.owned !== 'object' || d.owned === null) return undefined;
  return {
    phase: d.phase ?? 'topics',
    createdTopics: Array.isArray(d.createdTopics) ? d.createdTopics : [],
    owned: { ...d.owned },
    filled: Array.isArray(d.filled) ? [...d.filled] : [],
    messages: typeof d.messages === 'number' ? d.messages : 0,
    bytes: typeof d.bytes === 'number' ? d.bytes : 0,
  };
}
