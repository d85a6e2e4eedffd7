import { backOff, type BackoffOptions } from 'exponential-backoff';
import type { Kafka, Producer, RetryOptions } from 'kafkajs';

/** Per request; a restarting broker refuses connections at once on a local network. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** kafkajs' own retries inside one send: metadata refresh after NOT_LEADER and the like (~3 s). */
export const PRODUCER_RETRY: RetryOptions = { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000, multiplier: 2 };
/** Our own attempts at one numbered message: long enough to ride through a broker restart. */
const SEND_GIVE_UP_MS = 60_000;
const ATTEMPT_BACKOFF_MS = 250;
const ATTEMPT_BACKOFF_MAX_MS = 2_000;
const ATTEMPT_DELAYS: BackoffOptions = { startingDelay: ATTEMPT_BACKOFF_MS, timeMultiple: 2, maxDelay: ATTEMPT_BACKOFF_MAX_MS };

/** Errors after which the idempotent producer's state is unusable: a new producer (new id) is needed. */
const PRODUCER_STATE_ERRORS = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
  'PRODUCER_FENCED',
]);

export interface SendOutcome {
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
export class CanaryProducer {
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
    await backOff(() => this.producer.connect(), { ...ATTEMPT_DELAYS, numOfAttempts: Infinity, retry: () => Date.now() <= deadline });
  }

  async disconnect(): Promise<void> {
    for (const remove of this.removeListeners) remove();
    await this.producer.disconnect();
  }

  async sendWithRetries(topic: string, key: string, value: string, cancelled: () => boolean): Promise<SendOutcome> {
    const deadline = Date.now() + SEND_GIVE_UP_MS;
    const requestsBefore = this.produceRequests;
    let attempts = 0;
    let lastError: string | undefined;
    let gaveUp: SendOutcome | undefined;
    try {
      await backOff(
        async () => {
          // Cancelled while waiting for this attempt.
          if (attempts > 0 && cancelled()) {
            gaveUp = { acked: false, retried: true, cancelled: true, attempts, lastError };
            throw new Error('cancelled');
          }
          attempts += 1;
          await this.producer.send({ topic, acks: -1, timeout: REQUEST_TIMEOUT_MS, messages: [{ key, value }] });
        },
        {
          ...ATTEMPT_DELAYS,
          numOfAttempts: Infinity,
          retry: async (err) => {
            if (gaveUp) return false;
            lastError = describeError(err);
            if (cancelled()) {
              gaveUp = { acked: false, retried: attempts > 1, cancelled: true, attempts, lastError };
              return false;
            }
            if (Date.now() + ATTEMPT_BACKOFF_MS > deadline) {
              gaveUp = { acked: false, retried: true, cancelled: false, attempts, lastError };
              return false;
            }
            if (needsNewProducer(err)) await this.replace();
            return true;
          },
        },
      );
    } catch (err) {
      if (gaveUp) return gaveUp;
      throw err;
    }
    return { acked: true, retried: attempts > 1 || this.produceRequests - requestsBefore > 1, cancelled: false, attempts };
  }

  private async replace(): Promise<void> {
    await this.disconnect().catch(() => undefined);
    this.producer = this.create();
    await this.producer.connect().catch(() => undefined);
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
