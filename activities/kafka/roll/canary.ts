import { randomUUID } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { heartbeat } from '../../common/heartbeat';
import type { Admin } from 'kafkajs';
import { cancellationReason } from '../../common/cancellation';
import type { ActivityDeps } from '../../deps';
import { createTopicsAndWait, deleteConsumerGroup, retryOnLeaderChange } from '../topics';
import { Failure } from '../../../contracts/failures';
import { CanaryConsumer } from './canaryConsumer';
import { CanaryProducer, PRODUCER_RETRY, REQUEST_TIMEOUT_MS } from './canaryProducer';
import { canaryAccounting, quantile, type CanaryReport } from './canaryReport';

/**
 * The canary of a rolling restart: an idempotent acks=all producer writes numbered messages to a
 * canary topic while brokers restart, and a consumer of its own reads them back, so the report can
 * say whether any acknowledged message was lost (it must not be), and what producing cost during
 * the roll (errors, retries, latency).
 *
 * The stop is a message, not a process-local flag: stopKafkaCanary writes {canaryId, stop: true} to
 * the canary topic and the running canary's consumer sees it, so the two activities may run on
 * different worker processes.
 */

export interface CanaryInput {
  /** Names this canary's messages (the message key) and its stop marker; the workflow id, say. */
  canaryId: string;
  /** Defaults to kafka.roll.canaryTopic. */
  topic?: string;
}

/** What runKafkaCanary heartbeats (every second): progress, and where a retried attempt reads from. */
export interface CanaryHeartbeat {
  sent: number;
  acked: number;
  errors: number;
  /** The canary topic's high watermarks when the first attempt started, per partition. */
  startOffsets?: Record<string, string>;
}

/** The value of a numbered canary message. */
export interface CanaryMessage {
  canaryId: string;
  seq: number;
  sentAt: string;
  /** The activity attempt that wrote it; a retried attempt numbers from 0 again. */
  attempt?: number;
}

/** The value of the stop marker. */
export interface CanaryStop {
  canaryId: string;
  stop: true;
}

const PARTITIONS = 3;
/** After the stop, how long the consumer may take to read up to the high watermarks. */
const CATCH_UP_TIMEOUT_MS = 60_000;
const HEARTBEAT_EVERY_MS = 1_000;
export const CANARY_GROUP_PREFIX = 'ballast-canary-';

export function createKafkaCanaryActivities(deps: ActivityDeps) {
  const { config, connections } = deps;

  const settings = (activity: string, input: CanaryInput) => {
    if (!input || typeof input.canaryId !== 'string' || !/^[A-Za-z0-9._:/@=+-]{1,200}$/.test(input.canaryId)) {
      throw ApplicationFailure.nonRetryable(`${activity}: canaryId: must be 1-200 letters, digits or ._:/@=+- (got ${JSON.stringify(input?.canaryId)})`, Failure.InvalidInput);
    }
    const topic = input.topic ?? config.kafka.roll.canaryTopic;
    if (typeof topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(topic)) {
      throw ApplicationFailure.nonRetryable(`${activity}: topic: not a valid Kafka topic name: ${JSON.stringify(topic)}`, Failure.InvalidInput);
    }
    return { canaryId: input.canaryId, topic };
  };

  const replicationFactor = Math.min(3, config.kafka.brokers.length);

  return {
    /**
     * Writes numbered acks=all messages every kafka.roll.canaryIntervalMs until the stop marker
     * written by stopKafkaCanary (or a cancellation), then reads everything back and reports.
     */
    async runKafkaCanary(input: CanaryInput): Promise<CanaryReport> {
      const { canaryId, topic } = settings('runKafkaCanary', input);
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      const previous = ctx.info.heartbeatDetails as CanaryHeartbeat | undefined;
      const startedAt = new Date();
      const kafka = connections.kafka(REQUEST_TIMEOUT_MS);
      const admin = kafka.admin({ retry: PRODUCER_RETRY });
      const groupId = `${CANARY_GROUP_PREFIX}${canaryId.replace(/[^A-Za-z0-9._-]/g, '_')}-${randomUUID()}`;

      const counters = { sent: 0, acked: 0, errors: 0, retries: 0 };
      const ackedSeqs: number[] = [];
      const latencies: number[] = [];
      let startOffsets: Record<string, string> = {};
      let stopRequested = false;
      let wake: (() => void) | undefined;
      const wakeUp = () => wake?.();
      const onCancel = () => wakeUp();

      let consumer: CanaryConsumer | undefined;
      let producer: CanaryProducer | undefined;
      let consumerFailure: unknown;
      let beating: NodeJS.Timeout | undefined;
      ctx.cancellationSignal.addEventListener('abort', onCancel);
      try {
        await admin.connect();
        await ensureCanaryTopic(admin, topic, replicationFactor);

        // Where this canary reads from: the first attempt's start, so a stop marker written while
        // a retried attempt was on its way is still seen.
        if (previous?.startOffsets && Object.keys(previous.startOffsets).length) {
          startOffsets = previous.startOffsets;
        } else {
          const offsets = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
          startOffsets = Object.fromEntries(offsets.map((o) => [String(o.partition), o.high]));
        }
        const beat = () => heartbeat({ sent: counters.sent, acked: counters.acked, errors: counters.errors, startOffsets } satisfies CanaryHeartbeat, ctx);
        beat();
        beating = setInterval(beat, HEARTBEAT_EVERY_MS);

        // --- the consumer: every partition from startOffsets; positions are ours, not the group's.
        const reader = new CanaryConsumer(kafka, {
          groupId,
          topic,
          canaryId,
          attempt,
          startOffsets,
          onStop: () => {
            if (!stopRequested) {
              stopRequested = true;
              wakeUp();
            }
          },
          onCrash: (error) => {
            consumerFailure = error;
            wakeUp();
          },
        });
        consumer = reader;
        await reader.run();

        // --- the producer: one numbered message in flight at a time, on a fixed cadence.
        producer = new CanaryProducer(kafka);
        await producer.connect();
        const interval = config.kafka.roll.canaryIntervalMs;
        let nextAt = Date.now();
        const stopping = () => stopRequested || ctx.cancellationSignal.aborted || consumerFailure !== undefined;
        const sleepUntil = async (t: number) => {
          const ms = t - Date.now();
          if (ms <= 0 || stopping()) return;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, ms);
            function done() {
              clearTimeout(timer);
              wake = undefined;
              resolve();
            }
            wake = done;
          });
        };
        for (let seq = 0; !stopping(); seq++) {
          await sleepUntil(nextAt);
          if (stopping()) break;
          nextAt = Math.max(Date.now(), nextAt + interval);
          const sentAt = new Date();
          const message: CanaryMessage = { canaryId, seq, sentAt: sentAt.toISOString(), attempt };
          counters.sent += 1;
          const outcome = await producer.sendWithRetries(topic, canaryId, JSON.stringify(message), () => ctx.cancellationSignal.aborted);
          if (outcome.retried) counters.retries += 1;
          if (outcome.acked) {
            counters.acked += 1;
            ackedSeqs.push(seq);
            latencies.push(Date.now() - sentAt.getTime());
          } else if (!outcome.cancelled) {
            counters.errors += 1;
          }
        }
        if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
        if (consumerFailure !== undefined) throw consumerFailure;
        const stoppedAt = new Date();
        await producer.disconnect();
        producer = undefined;

        // --- read up to the high watermarks taken now that nothing of ours is in flight.
        const highs = await retryOnLeaderChange(admin, [topic], () => admin.fetchTopicOffsets(topic));
        const caughtUp = () => highs.every((h) => (reader.position.get(h.partition) ?? BigInt(h.high)) >= BigInt(h.high));
        const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
        while (!caughtUp() && Date.now() < deadline && consumerFailure === undefined && !ctx.cancellationSignal.aborted) {
          await reader.nextBatch(500);
        }
        if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
        const consumerCaughtUp = caughtUp();

        const accounting = canaryAccounting(ackedSeqs, reader.consumed);
        return {
          canaryId,
          topic,
          sent: counters.sent,
          acknowledged: counters.acked,
          produceErrors: counters.errors,
          retries: counters.retries,
          maxLatencyMs: latencies.reduce((m, l) => Math.max(m, l), 0),
          p99LatencyMs: quantile(latencies, 0.99),
          ...accounting,
          consumerCaughtUp,
          startedAt: startedAt.toISOString(),
          stoppedAt: stoppedAt.toISOString(),
        };
      } catch (err) {
        if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
        throw err;
      } finally {
        ctx.cancellationSignal.removeEventListener('abort', onCancel);
        if (beating) clearInterval(beating);
        await producer?.disconnect().catch(() => undefined);
        await consumer?.disconnect().catch(() => undefined);
        if (consumer) await deleteConsumerGroup(admin, groupId);
        await admin.disconnect().catch(() => undefined);
      }
    },

    /**
     * Writes the stop marker ({canaryId, stop: true}, acks=all) that ends runKafkaCanary's
     * producing, wherever that activity runs. Writing it twice does no harm.
     */
    async stopKafkaCanary(input: CanaryInput): Promise<void> {
      const { canaryId, topic } = settings('stopKafkaCanary', input);
      const kafka = connections.kafka(REQUEST_TIMEOUT_MS);
      const admin = kafka.admin({ retry: PRODUCER_RETRY });
      const producer = new CanaryProducer(kafka);
      try {
        await admin.connect();
        // The canary creates its topic before it reads; a stop that comes first still lands.
        await ensureCanaryTopic(admin, topic, replicationFactor);
        await producer.connect();
        const stop: CanaryStop = { canaryId, stop: true };
        const outcome = await producer.sendWithRetries(topic, canaryId, JSON.stringify(stop), () => false);
        if (!outcome.acked) {
          throw new Error(`stopKafkaCanary: the stop marker for ${canaryId} was not acknowledged by ${topic}: ${outcome.lastError ?? 'unknown error'}`);
        }
      } finally {
        await producer.disconnect().catch(() => undefined);
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

/** Creates the canary topic when missing: RF min(3, brokers), min.insync.replicas 2 (or RF), a few partitions. */
export async function ensureCanaryTopic(admin: Admin, topic: string, replicationFactor: number): Promise<void> {
  const topics = await admin.listTopics();
  if (topics.includes(topic)) return;
  try {
    await createTopicsAndWait(admin, [
      {
        topic,
        numPartitions: PARTITIONS,
        replicationFactor,
        configEntries: [
          { name: 'min.insync.replicas', value: String(Math.min(2, replicationFactor)) },
          // Only read during one roll: a day is plenty, and the topic never grows without bound.
          { name: 'retention.ms', value: String(24 * 3600 * 1000) },
        ],
      },
    ]);
  } catch (err) {
    // Created by someone else (a concurrent stop or canary) in the meantime: fine.
    if (!(await admin.listTopics()).includes(topic)) throw err;
  }
}
