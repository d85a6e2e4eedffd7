import { Context } from '@temporalio/activity';
import { heartbeat } from '../common/heartbeat';
import type { Admin, Producer } from 'kafkajs';
import { mapLimit } from '../../contracts/concurrency';
import type { RestoreStepResult, VerifyCheck, VerifyResult } from '../../contracts/restoreTypes';
import { cancellationReason } from '../common/cancellation';
import { chunks } from '../common/chunks';
import type { ActivityDeps } from '../deps';
import { activeGroupFailure, checkGroupsIdle, deleteGroups } from './restoreGroups';
import { clampNote, countBelowForGroups, translate } from './restoreOffsets';
import { fillPartition } from './restorePieces';
import {
  checkMetadataPiece,
  checkSuffix,
  checkTopicSelection,
  invalid,
  loadPlan,
  makePlan,
  readMetadata,
  type KafkaRestoreRequest,
  type KafkaRestoreTargetsRequest,
  type PlannedPiece,
  type PlannedTopic,
} from './restoreRequest';
import { retryOnLeaderChange, waitForLeaders } from './topics';
import { settledTopicNames, waitForTopicsOnEveryBroker } from './protocolRequests';

/** How long the brokers get to agree on the topic list before the restore decides what to create. */
const TOPIC_SETTLE_MS = 10_000;

/**
 * Restores a Kafka backup (activities/kafka/backup.ts): topics with their partition counts and
 * config overrides, the saved messages of the topics whose data was backed up, and consumer-group
 * offsets, under the original names (suffix '') or beside them (a drill's suffix).
 *
 * Offsets are not preserved: message i of a partition's backup becomes offset (base + i) of the
 * target partition, where base is the partition's offset when this restore started filling it.
 * Committed group offsets of restored partitions are translated accordingly (restoredGroupOffset).
 */

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

const DATA_CONCURRENCY = 4;
const HEARTBEAT_EVERY_MS = 1_000;
const TOPIC_CHUNK = 50;

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
          heartbeat({ ...state, createdTopics: [...state.createdTopics], owned: { ...state.owned }, filled: [...state.filled] }, ctx);
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
        // Asked of every broker: one that has not yet caught up with a deletion would still list
        // a deleted topic, which would then not be created again.
        const existing = new Set((await settledTopicNames(config.kafka.brokers, 10_000, TOPIC_SETTLE_MS)) ?? (await admin.listTopics()));
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
        if (toCreate.length) {
          await waitForTopicsOnEveryBroker(config.kafka.brokers, toCreate.map((t) => t.target), 120_000);
          await waitForTopics(admin, toCreate.map((t) => t.target));
        }
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
          heartbeat({ ...state, group: g.target }, ctx);
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
          heartbeat({ phase: 'topics', topic: t.target }, ctx);
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
          heartbeat({ phase: 'groups', group: g.target }, ctx);
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
          } catch {
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
          heartbeat({ waitingForDeletion: remaining });
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
