import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Admin, Consumer, Kafka, Producer, RetryOptions } from 'kafkajs';
import { cancellationReason } from '../../common/cancellation';
import type { ActivityDeps } from '../../deps';
import { createTopicsAndWait, deleteConsumerGroup, retryOnLeaderChange } from '../topics';
import { Failure } from '../../../contracts/failures';

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

export interface CanaryReport {
  canaryId: string;
  topic: string;
  /** Numbered messages the producer tried to write (each counted once however often it was retried). */
  sent: number;
  /** Of those, the ones the cluster acknowledged (acks=all). */
  acknowledged: number;
  /** Sends given up on: never acknowledged after every attempt. */
  produceErrors: number;
  /** Sends that needed more than one attempt (our own attempts, or more than one Produce request). */
  retries: number;
  /** Of acknowledged sends, from the first attempt to the acknowledgement. */
  maxLatencyMs: number;
  p99LatencyMs: number;
  /** Distinct numbered messages of this canary read back. */
  consumed: number;
  /** Acknowledged messages never read back. Must be 0. */
  ackedMissing: number;
  /** The first (lowest) 20 of them. */
  missingSample: number[];
  /** Extra copies: records of a number already read at another offset. */
  duplicates: number;
  /** Messages whose send was given up on (or cut short) that were written all the same. */
  unackedButConsumed: number;
  /**
   * Whether the consumer read everything up to the high watermarks taken after the stop, before
   * the timeout. When false, ackedMissing may count messages that were simply not read in time.
   */
  consumerCaughtUp: boolean;
  startedAt: string;
  stoppedAt: string;
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

export interface CanaryAccounting {
  /** Distinct numbers read back. */
  consumed: number;
  ackedMissing: number;
  missingSample: number[];
  duplicates: number;
  unackedButConsumed: number;
}

export const MISSING_SAMPLE_SIZE = 20;

/**
 * The pure part of the canary's verdict. `acked`: the numbers the producer saw acknowledged;
 * `consumed`: the number of every distinct record read back (a number read at two offsets appears
 * twice). Missing: acknowledged and never read; duplicates: copies beyond the first;
 * unackedButConsumed: read back although never acknowledged (a send given up on that landed).
 */
export function canaryAccounting(acked: Iterable<number>, consumed: Iterable<number>): CanaryAccounting {
  const copies = new Map<number, number>();
  for (const seq of consumed) copies.set(seq, (copies.get(seq) ?? 0) + 1);
  const ackedSet = new Set(acked);
  const missing: number[] = [];
  for (const seq of ackedSet) if (!copies.has(seq)) missing.push(seq);
  missing.sort((a, b) => a - b);
  let duplicates = 0;
  let unackedButConsumed = 0;
  for (const [seq, n] of copies) {
    duplicates += n - 1;
    if (!ackedSet.has(seq)) unackedButConsumed += 1;
  }
  return {
    consumed: copies.size,
    ackedMissing: missing.length,
    missingSample: missing.slice(0, MISSING_SAMPLE_SIZE),
    duplicates,
    unackedButConsumed,
  };
}

/** The q-quantile (0..1] by nearest rank; 0 for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

// --- tuning

const PARTITIONS = 3;
/** Per request; a restarting broker refuses connections at once on a local network. */
const REQUEST_TIMEOUT_MS = 10_000;
/** kafkajs' own retries inside one send: metadata refresh after NOT_LEADER and the like (~3 s). */
const PRODUCER_RETRY: RetryOptions = { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000, multiplier: 2 };
/** Our own attempts at one numbered message: long enough to ride through a broker restart. */
const SEND_GIVE_UP_MS = 60_000;
const ATTEMPT_BACKOFF_MS = 250;
const ATTEMPT_BACKOFF_MAX_MS = 2_000;
/** After the stop, how long the consumer may take to read up to the high watermarks. */
const CATCH_UP_TIMEOUT_MS = 60_000;
const HEARTBEAT_EVERY_MS = 1_000;
export const CANARY_GROUP_PREFIX = 'ballast-canary-';

/** Errors after which the idempotent producer's state is unusable: a new producer (new id) is needed. */
const PRODUCER_STATE_ERRORS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
  'PRODUCER_FENCED',
]);

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
      const consumedSeqs: number[] = [];
      let startOffsets: Record<string, string> = {};
      let stopRequested = false;
      let wake: (() => void) | undefined;
      const wakeUp = () => wake?.();
      const onCancel = () => wakeUp();

      let consumer: Consumer | undefined;
      let producer: CanaryProducer | undefined;
      let consumerFailure: unknown;
      let heartbeat: NodeJS.Timeout | undefined;
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
        const beat = () => ctx.heartbeat({ sent: counters.sent, acked: counters.acked, errors: counters.errors, startOffsets } satisfies CanaryHeartbeat);
        beat();
        heartbeat = setInterval(beat, HEARTBEAT_EVERY_MS);

        // --- the consumer: every partition from startOffsets; positions are ours, not the group's.
        const position = new Map<number, bigint>(Object.entries(startOffsets).map(([p, o]) => [Number(p), BigInt(o)]));
        const start = new Map(position);
        let progressed: (() => void) | undefined;
        consumer = kafka.consumer({
          groupId,
          allowAutoTopicCreation: false,
          minBytes: 1,
          maxWaitTimeInMs: 100,
          // When the group's coordinator restarts, kafkajs may rejoin as a new member, and the
          // group then waits for the old one's session to expire: 30 s held a whole roll up
          // (measured). 6 s is the brokers' default minimum.
          sessionTimeout: 6_000,
          rebalanceTimeout: 10_000,
          heartbeatInterval: 1_000,
          retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 3_000 },
        });
        const c = consumer;
        // On every (re)join the group has no committed offsets: put each partition back where we are.
        c.on(c.events.GROUP_JOIN, ({ payload }) => {
          for (const p of payload.memberAssignment[topic] ?? []) {
            const at = position.get(p);
            if (at !== undefined) c.seek({ topic, partition: p, offset: at.toString() });
          }
        });
        c.on(c.events.CRASH, ({ payload }) => {
          if (!payload.restart) {
            consumerFailure = payload.error;
            wakeUp();
          }
        });
        await c.connect();
        await c.subscribe({ topics: [topic], fromBeginning: true });
        await c.run({
          autoCommit: false,
          eachBatch: async ({ batch, resolveOffset }) => {
            const p = batch.partition;
            const from = start.get(p);
            let at = position.get(p);
            for (const m of batch.messages) {
              const offset = BigInt(m.offset);
              resolveOffset(m.offset);
              // Below this canary's start, or read already (a re-delivery after a rejoin).
              if (from === undefined || offset < from || (at !== undefined && offset < at)) continue;
              at = offset + 1n;
              if (m.key?.toString() !== canaryId || !m.value) continue;
              const value = parseJson(m.value.toString());
              if (!value || value.canaryId !== canaryId) continue;
              if (value.stop === true) {
                if (!stopRequested) {
                  stopRequested = true;
                  wakeUp();
                }
              } else if (typeof value.seq === 'number' && (value.attempt ?? 1) === attempt) {
                consumedSeqs.push(value.seq);
              }
            }
            if (at !== undefined) position.set(p, at);
            progressed?.();
          },
        });

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
        const caughtUp = () => highs.every((h) => (position.get(h.partition) ?? BigInt(h.high)) >= BigInt(h.high));
        const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
        while (!caughtUp() && Date.now() < deadline && consumerFailure === undefined && !ctx.cancellationSignal.aborted) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(done, 500);
            function done() {
              clearTimeout(timer);
              progressed = undefined;
              resolve();
            }
            progressed = done;
          });
        }
        if (ctx.cancellationSignal.aborted) throw cancellationReason(ctx);
        const consumerCaughtUp = caughtUp();

        const accounting = canaryAccounting(ackedSeqs, consumedSeqs);
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
        if (heartbeat) clearInterval(heartbeat);
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

interface SendOutcome {
  acked: boolean;
  /** More than one attempt of ours, or more than one Produce request inside kafkajs. */
  retried: boolean;
  cancelled: boolean;
  attempts: number;
  lastError?: string;
}

/**
 * An idempotent acks=all producer, one message in flight, with a retry loop of its own around
 * kafkajs' short one: an attempt that fails is made again (same producer, so the broker drops a
 * copy that did land) until SEND_GIVE_UP_MS. A producer whose idempotence state the cluster no
 * longer accepts is replaced by a new one.
 */
class CanaryProducer {
  private producer: Producer;
  private produceRequests = 0;
  private removeListeners: (() => void)[] = [];

  constructor(private readonly kafka: Kafka) {
    this.producer = this.create();
  }

  private create(): Producer {
    const producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: PRODUCER_RETRY,
    });
    // Produce requests that got an answer (an error code included) or timed out: more than one
    // for a message means kafkajs retried it.
    const count = ({ payload }: { payload: { apiName: string } }) => {
      if (payload.apiName === 'Produce') this.produceRequests += 1;
    };
    this.removeListeners = [producer.on(producer.events.REQUEST, count), producer.on(producer.events.REQUEST_TIMEOUT, count)];
    return producer;
  }

  async connect(): Promise<void> {
    const deadline = Date.now() + SEND_GIVE_UP_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.connect();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(Math.min(ATTEMPT_BACKOFF_MS * 2 ** (attempt - 1), ATTEMPT_BACKOFF_MAX_MS));
      }
    }
  }

  async disconnect(): Promise<void> {
    for (const remove of this.removeListeners) remove();
    await this.producer.disconnect();
  }

  async sendWithRetries(topic: string, key: string, value: string, cancelled: () => boolean): Promise<SendOutcome> {
    const deadline = Date.now() + SEND_GIVE_UP_MS;
    const requestsBefore = this.produceRequests;
    let lastError: string | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.send({ topic, acks: -1, timeout: REQUEST_TIMEOUT_MS, messages: [{ key, value }] });
        return { acked: true, retried: attempt > 1 || this.produceRequests - requestsBefore > 1, cancelled: false, attempts: attempt };
      } catch (err) {
        lastError = describeError(err);
        const retried = true;
        if (cancelled()) return { acked: false, retried: attempt > 1, cancelled: true, attempts: attempt, lastError };
        if (Date.now() + ATTEMPT_BACKOFF_MS > deadline) return { acked: false, retried, cancelled: false, attempts: attempt, lastError };
        if (needsNewProducer(err)) await this.replace();
        await sleep(Math.min(ATTEMPT_BACKOFF_MS * 2 ** (attempt - 1), ATTEMPT_BACKOFF_MAX_MS, Math.max(0, deadline - Date.now())));
        if (cancelled()) return { acked: false, retried, cancelled: true, attempts: attempt, lastError };
      }
    }
  }

  private async replace(): Promise<void> {
    await this.disconnect().catch(() => undefined);
    this.producer = this.create();
    await this.producer.connect().catch(() => undefined);
  }
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


function needsNewProducer(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const type = (e as { type?: string }).type;
    if (type && PRODUCER_STATE_ERRORS.has(type)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function describeError(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string } };
  return e?.cause?.message && e.cause.message !== e.message ? `${e.message} (${e.cause.message})` : String(e?.message ?? err);
}

function parseJson(text: string): { canaryId?: unknown; seq?: unknown; stop?: unknown; attempt?: number } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as { canaryId?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
