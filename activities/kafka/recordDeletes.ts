/**
 * Kafka record deletes for compaction: for each policy topic with deleteRecordsOlderThanDays,
 * the records older than the cutoff, per partition (read-only), and their deletion (an approved,
 * destructive step): DeleteRecords up to the planned offsets, never past them.
 */
import type { Admin } from 'kafkajs';
import type { PartitionRecordCut, RecordDeletePlan, RecordDeleteStep, StepResult } from '../../contracts/maintenanceTypes';
import type { ActivityDeps } from '../deps';
import { topicIdsOnEachBroker } from './protocolRequests';
import { describeTopic } from './retention';
import { deleteRecords, retryOnLeaderChange, withAdmin } from './topics';

const DAY_MS = 86_400_000;
const ZERO_TOPIC_ID = '00000000-0000-0000-0000-000000000000';
/** A topic created or deleted a moment ago reaches each broker in its own time: how long the plan waits for them to agree. */
const SETTLE_MS = 10_000;

/** Kafka accepts DeleteRecords only on a topic whose cleanup.policy includes delete. */
const allowsDeletes = (policy: string) => policy.split(',').map((p) => p.trim()).includes('delete');

/**
 * Where to cut one partition. `firstAtCutoff` is ListOffsets by timestamp: the first offset
 * whose timestamp is at or after the cutoff, or -1 when no record is that new (then every record
 * up to the high watermark is older). Kept within [low, high]: Kafka never deletes before the log
 * start, and an answer read after new records arrived must not reach past the high watermark the
 * plan counted up to.
 */
export function partitionCut(partition: number, low: number, high: number, firstAtCutoff: number): PartitionRecordCut {
  const at = firstAtCutoff < 0 ? high : firstAtCutoff;
  const offset = Math.min(Math.max(at, low), high);
  return { partition, low, high, offset, records: offset - low };
}

type TopicIdentity = { id: string } | { absent: true } | { unsettled: string };

/** What the brokers that answered say of `topic`: listed by none, listed by all under one id, or not agreed on yet. */
export function topicIdentity(answers: (Map<string, string> | undefined)[], topic: string): TopicIdentity {
  const answered = answers.filter((a): a is Map<string, string> => a !== undefined);
  if (!answered.length) throw new Error('no Kafka broker answered a metadata request');
  const ids = answered.map((a) => a.get(topic));
  if (ids.every((id) => id === undefined)) return { absent: true };
  const [first] = ids;
  if (first !== undefined && first !== ZERO_TOPIC_ID && ids.every((id) => id === first)) return { id: first };
  return { unsettled: ids.map((id) => id ?? 'not listed').join(', ') };
}

export function createKafkaRecordDeleteActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const brokers = config.kafka.brokers;

  async function settledIdentity(topic: string): Promise<TopicIdentity> {
    const deadline = Date.now() + SETTLE_MS;
    for (;;) {
      const found = topicIdentity(await topicIdsOnEachBroker(brokers, 10_000), topic);
      if (!('unsettled' in found) || Date.now() >= deadline) return found;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function planTopic(admin: Admin, topic: string, cutoff: Date): Promise<RecordDeletePlan> {
    const plan: RecordDeletePlan = { topic, cutoff: cutoff.toISOString(), partitions: [], records: 0 };
    const described = await describeTopic(admin, topic);
    if (!described) return { ...plan, problem: 'the topic does not exist' };
    const policy = described.effective['cleanup.policy'] ?? 'delete';
    if (!allowsDeletes(policy)) {
      return { ...plan, problem: `cleanup.policy is ${policy}: Kafka deletes records only from a topic whose cleanup.policy includes delete, and a compacted topic keeps each key's latest value whatever its age` };
    }
    const identity = await settledIdentity(topic);
    if ('absent' in identity) return { ...plan, problem: 'the topic does not exist' };
    if ('unsettled' in identity) return { ...plan, problem: `the brokers do not agree on the topic's id (${identity.unsettled}): it was created or deleted a moment ago` };
    const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
    const byTime = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsetsByTimestamp(topic, cutoff.getTime()));
    const partitions = offsets
      .map((o) => {
        const at = byTime.find((t) => t.partition === o.partition);
        if (!at) throw new Error(`ListOffsets by timestamp of topic ${topic} did not answer for partition ${o.partition}`);
        return partitionCut(o.partition, Number(o.low), Number(o.high), Number(at.offset));
      })
      .sort((a, b) => a.partition - b.partition);
    return { ...plan, topicId: identity.id, partitions, records: partitions.reduce((n, p) => n + p.records, 0) };
  }

  return {
    /** For each policy topic with deleteRecordsOlderThanDays: the records older than `now` minus that, per partition. Read-only. */
    async planKafkaRecordDeletes({ now }: { now: string }): Promise<RecordDeletePlan[]> {
      const policies = config.maintenance.kafka.topics.filter((p) => p.deleteRecordsOlderThanDays !== undefined);
      if (!policies.length) return [];
      return withAdmin(connections.kafka(), async (admin) => {
        const plans: RecordDeletePlan[] = [];
        for (const policy of policies) plans.push(await planTopic(admin, policy.topic, new Date(Date.parse(now) - policy.deleteRecordsOlderThanDays! * DAY_MS)));
        return plans;
      });
    },

    /**
     * Deletes the approved records: DeleteRecords up to each planned offset, only on the topic the
     * plan saw (same topic id) and only while every partition still reaches its planned offset.
     * Records that became older than the cutoff since are left for the next plan. Idempotent: a
     * partition whose log already starts at or past its offset is done. Verified by reading the log
     * start offsets back: each at its planned offset, so every record from there on is kept.
     */
    async deleteKafkaRecords({ step }: { step: RecordDeleteStep }): Promise<StepResult> {
      const started = Date.now();
      const result = { id: step.id, kind: step.kind, summary: step.summary, startedAt: new Date(started).toISOString() };
      const identity = topicIdentity(await topicIdsOnEachBroker(brokers, 10_000), step.topic);
      if ('absent' in identity) return { ...result, outcome: 'skipped', reason: 'the topic is gone' };
      if ('unsettled' in identity || identity.id !== step.topicId) {
        const seen = 'id' in identity ? identity.id : identity.unsettled;
        return { ...result, outcome: 'skipped', reason: `changed since the plan was approved: topic ${step.topic} is not the topic planned (topic id now ${seen}, the plan saw ${step.topicId}): it was deleted, or deleted and created again; nothing deleted` };
      }
      return withAdmin(connections.kafka(), async (admin) => {
        const described = await describeTopic(admin, step.topic);
        if (!described) return { ...result, outcome: 'skipped', reason: 'the topic is gone' };
        const policy = described.effective['cleanup.policy'] ?? 'delete';
        if (!allowsDeletes(policy)) return { ...result, outcome: 'skipped', reason: `changed since the plan was approved: cleanup.policy is now ${policy}; nothing deleted` };
        const watermarks = async () => {
          const offsets = await retryOnLeaderChange(admin, [step.topic], () => admin.fetchTopicOffsets(step.topic));
          return new Map(offsets.map((o) => [o.partition, { low: Number(o.low), high: Number(o.high) }]));
        };
        const found = await watermarks();
        const before = Object.fromEntries(step.partitions.map((p) => [`partition ${p.partition}`, found.get(p.partition)?.low]));
        const short = step.partitions.filter((p) => (found.get(p.partition)?.high ?? -1) < p.offset);
        if (short.length) {
          const below = short.map((p) => `partition ${p.partition}'s high watermark is ${found.get(p.partition)?.high ?? '(no such partition)'}, below the planned offset ${p.offset}`).join('; ');
          return { ...result, outcome: 'skipped', reason: `changed since the plan was approved: ${below}; nothing deleted`, before };
        }
        const toDelete = step.partitions.filter((p) => found.get(p.partition)!.low < p.offset);
        if (!toDelete.length) return { ...result, outcome: 'already done', reason: 'every partition already starts at or past its planned offset', before, after: before };
        await deleteRecords(admin, step.topic, toDelete.map((p) => ({ partition: p.partition, offset: String(p.offset) })));
        const deleted = toDelete.reduce((n, p) => n + p.offset - found.get(p.partition)!.low, 0);
        // DeleteRecords answers once the leader moved its log start; a leadership change meanwhile may leave another leader answering the read.
        let after = found;
        let behind = step.partitions;
        for (const waitUntil = Date.now() + 30_000; behind.length && Date.now() < waitUntil; ) {
          after = await watermarks();
          behind = step.partitions.filter((p) => after.get(p.partition)!.low < p.offset);
          if (behind.length) await new Promise((r) => setTimeout(r, 250));
        }
        const past = toDelete.filter((p) => after.get(p.partition)!.low > p.offset);
        const afterFigures = { ...Object.fromEntries(step.partitions.map((p) => [`partition ${p.partition}`, after.get(p.partition)!.low])), recordsDeleted: deleted };
        const verified = step.partitions.map((p) => `partition ${p.partition}: log start ${before[`partition ${p.partition}`]} -> ${after.get(p.partition)!.low} (planned ${p.offset})`).join('; ');
        const problem = behind.length
          ? `the log start of partition(s) ${behind.map((p) => p.partition).join(', ')} did not reach the planned offset`
          : past.length
            ? `the log start of partition(s) ${past.map((p) => p.partition).join(', ')} is past the planned offset: records from that offset on are gone too (Kafka's own retention or another client deleted them; DeleteRecords stops at the planned offset)`
            : undefined;
        return { ...result, outcome: problem ? 'failed' : 'done', reason: problem && `verification failed: ${problem}`, before, after: afterFigures, verified, durationMs: Date.now() - started };
      });
    },
  };
}
