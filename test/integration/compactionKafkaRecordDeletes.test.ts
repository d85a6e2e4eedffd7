import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { Admin, Kafka } from 'kafkajs';
import { createKafkaRecordDeleteActivities } from '../../activities/kafka/recordDeletes';
import { topicIdsOnEachBroker, waitForTopicsOnEveryBroker } from '../../activities/kafka/protocolRequests';
import { createTopicsAndWait, deleteConsumerGroup, retryOnLeaderChange, waitForLeaders } from '../../activities/kafka/topics';
import type { ApprovalAnswer } from '../../contracts/approvalTypes';
import type { MaintenanceReport, RecordDeleteStep } from '../../contracts/maintenanceTypes';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { approveUpdate, rejectUpdate } from '../../workflows/approval';
import { compactionStatusQuery, type CompactionInput } from '../../workflows/compaction';
import { createConnections, type Connections } from '../../workers/connections';
import { eventually, startStackWorker, type StackWorker } from '../helpers/stackWorker';

// compaction's Kafka record deletes on the real stack. Records carry explicit timestamps derived
// from the test's clock: 40 days old and 1 day old, against a 30-day policy. Every topic is named
// cmp-rd-<id>-... and deleted afterwards.

const id = randomUUID().slice(0, 8);
const DAY = 86_400_000;
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const topics = { events: `cmp-rd-${id}-events`, state: `cmp-rd-${id}-state`, missing: `cmp-rd-${id}-missing`, victim: `cmp-rd-${id}-victim` };
/** events: per partition, this many 40-day-old records, then NEW_RECORDS 1-day-old ones. */
const OLD_RECORDS = [3, 5, 7];
const NEW_RECORDS = 4;
const VICTIM_OLD = 2;

describe('compaction: Kafka record deletes on the real stack', () => {
  const oldAt = Date.now() - 40 * DAY;
  const newAt = Date.now() - DAY;
  let approvers: Approvers;
  let worker: StackWorker;
  let connections: Connections;
  let kafka: Kafka;
  let admin: Admin;

  /** Each partition's log start offset and high watermark. */
  const watermarks = async (topic: string) =>
    (await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic))).map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) })).sort((a, b) => a.partition - b.partition);

  const produce = async (topic: string, partition: number, count: number, timestamp: number, label: string) => {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ partition, key: `k${i}`, value: `${label}-${partition}-${i}`, timestamp: String(timestamp) })) });
    } finally {
      await producer.disconnect();
    }
  };

  /** Every record of `topic`, per partition, read with a throw-away group; waits until each partition is read to its high watermark. */
  const readTopic = async (topic: string): Promise<Map<number, { value: string; timestamp: number }[]>> => {
    const marks = await watermarks(topic);
    const got = new Map(marks.map((m) => [m.partition, [] as { value: string; timestamp: number; offset: number }[]]));
    const groupId = `cmp-rd-${id}-reader-${randomUUID().slice(0, 8)}`;
    const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 100 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          got.get(partition)!.push({ value: message.value!.toString(), timestamp: Number(message.timestamp), offset: Number(message.offset) });
        },
      });
      await eventually(`${topic} read to its high watermarks`, async () => (marks.every((m) => m.high === m.low || got.get(m.partition)!.at(-1)?.offset === m.high - 1) ? true : undefined), 60_000, 100);
    } finally {
      await consumer.disconnect();
      await deleteConsumerGroup(admin, groupId);
    }
    return new Map([...got].map(([p, records]) => [p, records.map(({ value, timestamp }) => ({ value, timestamp }))]));
  };

  /** The topic id every broker gives `topic`, once they all agree. */
  const agreedTopicId = (topic: string, not?: string) =>
    eventually(`every broker to agree on ${topic}'s id`, async () => {
      const ids = (await topicIdsOnEachBroker(worker.loaded.config.kafka.brokers, 5_000)).map((m) => m?.get(topic));
      return ids[0] && ids[0] !== not && ids.every((x) => x === ids[0]) ? ids[0] : undefined;
    }, 60_000, 200);

  before(async () => {
    approvers = await createApprovers(['alice', 'bob']);
    const loaded = writeDerivedConfig(`cmp-rd-${id}`, (raw) => {
      raw.approvals = { ...raw.approvals, allowedSignersFile: approvers.allowedSignersFile, approvers: ['bob'], fourEyes: true };
      raw.maintenance = {
        window: { start: hhmm(Date.now() - 3_600_000), durationMinutes: 180 },
        schedule: { enabled: false, scheduleId: `cmp-rd-schedule-${id}` },
        kafka: { topics: [topics.events, topics.state, topics.missing, topics.victim].map((topic) => ({ topic, deleteRecordsOlderThanDays: 30 })) },
      };
    });
    connections = createConnections(loaded.config, loaded.path);
    kafka = connections.kafka();
    admin = kafka.admin();
    await admin.connect();
    // Kafka's own retention (7 days by default) would delete the 40-day-old records first: off on the test's topics.
    const noRetention = [{ name: 'retention.ms', value: '-1' }];
    await createTopicsAndWait(admin, [
      { topic: topics.events, numPartitions: OLD_RECORDS.length, replicationFactor: 3, configEntries: noRetention },
      { topic: topics.state, numPartitions: 1, replicationFactor: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      { topic: topics.victim, numPartitions: 2, replicationFactor: 3, configEntries: noRetention },
    ]);
    await waitForTopicsOnEveryBroker(loaded.config.kafka.brokers, [topics.events, topics.state, topics.victim], 60_000);
    for (const [partition, old] of OLD_RECORDS.entries()) {
      await produce(topics.events, partition, old, oldAt, 'old');
      await produce(topics.events, partition, NEW_RECORDS, newAt, 'new');
    }
    for (const partition of [0, 1]) {
      await produce(topics.victim, partition, VICTIM_OLD, oldAt, 'old');
      await produce(topics.victim, partition, 1, newAt, 'new');
    }
    // A compacted topic takes keyed records only (produce gives each a key).
    await produce(topics.state, 0, 3, oldAt, 'old');
    worker = await startStackWorker(loaded);
  });

  after(async () => {
    await worker?.close();
    await admin?.deleteTopics({ topics: [topics.events, topics.state, topics.victim] }).catch(() => undefined);
    await admin?.disconnect();
  });

  const start = (input: CompactionInput) => worker.client.workflow.start('compaction', { taskQueue: worker.taskQueue, workflowId: `cmp-rd-${id}-${randomUUID().slice(0, 8)}`, args: [input] });
  /** Waits for the approval ask; returns its actions and plan hash. */
  const asked = async (handle: WorkflowHandle) => {
    const status = await eventually('the approval ask', async () => {
      const s = await handle.query(compactionStatusQuery);
      return s.approval ? s : undefined;
    }, 120_000, 200);
    return status.approval!.plan;
  };
  /** bob signs `decision` over the plan hash the run asks about. */
  const answer = async (handle: WorkflowHandle, planHash: string, decision: 'approve' | 'reject') => {
    const runId = (await handle.describe()).runId;
    const signed: ApprovalAnswer = await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId, planHash, decision, reason: `cmp-rd test ${decision}` });
    await handle.executeUpdate(decision === 'approve' ? approveUpdate : rejectUpdate, { args: [signed] });
  };

  it('a dry run counts exactly the records older than the cutoff per partition, says why nothing is deleted elsewhere, and deletes nothing', async () => {
    const before = await watermarks(topics.events);
    const report = (await (await start({ dryRun: true, systems: ['kafka'] })).result()) as MaintenanceReport;
    assert.deepEqual(await watermarks(topics.events), before, 'nothing deleted');
    const cutoff = new Date(Date.parse(report.plan.plannedAt) - 30 * DAY).toISOString();
    const plans = new Map(report.plan.kafkaRecordDeletes.map((p) => [p.topic, p]));
    const events = plans.get(topics.events)!;
    assert.equal(events.cutoff, cutoff);
    assert.deepEqual(
      events.partitions,
      OLD_RECORDS.map((old, partition) => ({ partition, low: 0, high: old + NEW_RECORDS, offset: old, records: old })),
    );
    assert.equal(events.records, OLD_RECORDS.reduce((a, b) => a + b, 0));
    assert.match(events.topicId!, /^[0-9a-f-]{36}$/);
    assert.match(plans.get(topics.state)!.problem!, /^cleanup\.policy is compact: Kafka deletes records only from a topic whose cleanup\.policy includes delete/);
    assert.equal(plans.get(topics.missing)!.problem, 'the topic does not exist');
    assert.deepEqual(report.plan.kafka.find((t) => t.topic === topics.missing), { topic: topics.missing, changes: [], problem: 'the topic does not exist' }, 'the drift check reports the missing topic too, instead of failing the plan');
    const steps = report.plan.steps.filter((s): s is RecordDeleteStep => s.kind === 'recordDelete');
    assert.deepEqual(steps.map((s) => s.topic).sort(), [topics.events, topics.victim].sort(), 'one step per topic with old records, none for the compacted or missing topic');
    const step = steps.find((s) => s.topic === topics.events)!;
    assert.equal(step.destructive, 'recordDelete');
    assert.deepEqual(step.partitions, OLD_RECORDS.map((old, partition) => ({ partition, low: 0, offset: old })));
    assert.equal(step.summary, `delete 15 record(s) older than ${cutoff} from topic ${topics.events} (partition 0: 3 up to offset 3, partition 1: 5 up to offset 5, partition 2: 7 up to offset 7)`);
  });

  it('rejected: nothing is deleted, the log start offsets are unchanged', async () => {
    const before = { events: await watermarks(topics.events), victim: await watermarks(topics.victim) };
    const handle = await start({ systems: ['kafka'] });
    const plan = await asked(handle);
    assert.equal(plan.actions.length, 2);
    assert.ok(plan.actions.every((a) => /^delete \d+ record\(s\) older than /.test(a)), plan.actions.join('\n'));
    await answer(handle, plan.hash, 'reject');
    const report = (await handle.result()) as MaintenanceReport;
    assert.equal(report.approval?.outcome, 'rejected');
    assert.deepEqual(report.steps.map((s) => [s.kind, s.outcome]), [['recordDelete', 'skipped'], ['recordDelete', 'skipped']]);
    assert.deepEqual(await watermarks(topics.events), before.events);
    assert.deepEqual(await watermarks(topics.victim), before.victim);
  });

  let approvedStep: RecordDeleteStep | undefined;

  it('approved: exactly the old records are gone and the new ones still read; a topic recreated after the plan is not deleted from', async () => {
    const planned = await agreedTopicId(topics.victim);
    const handle = await start({ systems: ['kafka'] });
    const plan = await asked(handle);
    // The attack: between the plan and its approval, the victim topic is deleted and created again
    // under its name, with more old records than the plan's offsets, which a check of the
    // offsets alone would let through.
    await admin.deleteTopics({ topics: [topics.victim] });
    await eventually('every broker to drop the victim topic', async () => {
      const ids = await topicIdsOnEachBroker(worker.loaded.config.kafka.brokers, 5_000);
      return ids.every((m) => m && !m.has(topics.victim)) ? true : undefined;
    }, 60_000, 200);
    await eventually('the victim topic created again', async () => {
      const created = await admin.createTopics({ waitForLeaders: false, topics: [{ topic: topics.victim, numPartitions: 2, replicationFactor: 3, configEntries: [{ name: 'retention.ms', value: '-1' }] }] });
      return created || undefined;
    }, 60_000, 500);
    const recreated = await agreedTopicId(topics.victim, planned);
    await waitForLeaders(admin, [topics.victim], 60_000);
    for (const partition of [0, 1]) await produce(topics.victim, partition, 10, oldAt, 'again');
    await answer(handle, plan.hash, 'approve');
    const report = (await handle.result()) as MaintenanceReport;
    assert.equal(report.approval?.outcome, 'approved');

    const step = report.steps.find((s) => s.id.startsWith(`kafka:recordDelete:${topics.events}<`))!;
    assert.equal(step.outcome, 'done', step.reason);
    assert.deepEqual(step.before, { 'partition 0': 0, 'partition 1': 0, 'partition 2': 0 });
    assert.deepEqual(step.after, { 'partition 0': 3, 'partition 1': 5, 'partition 2': 7, recordsDeleted: 15 });
    assert.deepEqual((await watermarks(topics.events)).map((m) => m.low), OLD_RECORDS);
    const left = await readTopic(topics.events);
    for (const [partition] of OLD_RECORDS.entries()) {
      assert.deepEqual(left.get(partition), Array.from({ length: NEW_RECORDS }, (_, i) => ({ value: `new-${partition}-${i}`, timestamp: newAt })), `partition ${partition} holds exactly its new records`);
    }
    approvedStep = report.plan.steps.find((s): s is RecordDeleteStep => s.kind === 'recordDelete' && s.topic === topics.events);

    const victim = report.steps.find((s) => s.id.startsWith(`kafka:recordDelete:${topics.victim}<`))!;
    assert.equal(victim.outcome, 'skipped');
    assert.equal(victim.reason, `changed since the plan was approved: topic ${topics.victim} is not the topic planned (topic id now ${recreated}, the plan saw ${planned}): it was deleted, or deleted and created again; nothing deleted`);
    assert.deepEqual(await watermarks(topics.victim), [{ partition: 0, low: 0, high: 10 }, { partition: 1, low: 0, high: 10 }], 'the recreated topic keeps every record');

    const again = (await (await start({ dryRun: true, systems: ['kafka'] })).result()) as MaintenanceReport;
    assert.equal(again.plan.kafkaRecordDeletes.find((p) => p.topic === topics.events)!.records, 0, 'nothing older than the cutoff is left');
    assert.ok(!again.plan.steps.some((s) => s.kind === 'recordDelete' && s.topic === topics.events));
  });

  it('the step again is "already done"; offsets past a partition\'s high watermark are refused, nothing deleted', async () => {
    assert.ok(approvedStep, 'the approved run planned the step');
    const activities = createKafkaRecordDeleteActivities({ config: worker.loaded.config, connections });
    const lows = (await watermarks(topics.events)).map((m) => m.low);
    const again = await activities.deleteKafkaRecords({ step: approvedStep });
    assert.equal(again.outcome, 'already done', again.reason);
    // What a truncated partition, or a stale plan, looks like: an offset beyond what the partition holds.
    const beyond = { ...approvedStep, partitions: [{ partition: 0, low: 3, offset: 4 }, { partition: 1, low: 0, offset: 100 }] };
    const refused = await activities.deleteKafkaRecords({ step: beyond });
    assert.equal(refused.outcome, 'skipped');
    assert.equal(refused.reason, `changed since the plan was approved: partition 1's high watermark is ${OLD_RECORDS[1]! + NEW_RECORDS}, below the planned offset 100; nothing deleted`);
    assert.deepEqual((await watermarks(topics.events)).map((m) => m.low), lows, 'not even partition 0, whose offset was in reach');
  });
});
