import type { Consumer, Kafka } from 'kafkajs';

export interface CanaryConsumerOptions {
  groupId: string;
  topic: string;
  canaryId: string;
  /** The activity attempt whose numbered messages are collected. */
  attempt: number;
  /** Where reading starts, per partition. */
  startOffsets: Record<string, string>;
  /** Called for every stop marker of this canary read. */
  onStop: () => void;
  /** Called when the consumer crashed and kafkajs will not restart it. */
  onCrash: (error: unknown) => void;
}

/**
 * The canary's consumer: every partition from startOffsets; positions are ours, not the group's.
 * It collects the number of every record of this canary and attempt it reads.
 */
export class CanaryConsumer {
  /** The next offset to read, per partition. */
  readonly position: Map<number, bigint>;
  /** The numbers read back, one per record (a number read at two offsets appears twice). */
  readonly consumed: number[] = [];
  private readonly start: Map<number, bigint>;
  private readonly consumer: Consumer;
  private progressed: (() => void) | undefined;

  constructor(
    kafka: Kafka,
    private readonly options: CanaryConsumerOptions,
  ) {
    const { topic } = options;
    const position = new Map<number, bigint>(Object.entries(options.startOffsets).map(([p, o]) => [Number(p), BigInt(o)]));
    this.position = position;
    this.start = new Map(position);
    this.consumer = kafka.consumer({
      groupId: options.groupId,
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
    const c = this.consumer;
    // On every (re)join the group has no committed offsets: put each partition back where we are.
    c.on(c.events.GROUP_JOIN, ({ payload }) => {
      for (const p of payload.memberAssignment[topic] ?? []) {
        const at = position.get(p);
        if (at !== undefined) c.seek({ topic, partition: p, offset: at.toString() });
      }
    });
    c.on(c.events.CRASH, ({ payload }) => {
      if (!payload.restart) options.onCrash(payload.error);
    });
  }

  async run(): Promise<void> {
    const { topic, canaryId, attempt, onStop } = this.options;
    const { position, start } = this;
    const c = this.consumer;
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
            onStop();
          } else if (typeof value.seq === 'number' && (value.attempt ?? 1) === attempt) {
            this.consumed.push(value.seq);
          }
        }
        if (at !== undefined) position.set(p, at);
        this.progressed?.();
      },
    });
  }

  /** Resolves once the next batch has been read, or after `ms`. */
  nextBatch(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.progressed = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.progressed = done;
    });
  }

  async disconnect(): Promise<void> {
    await this.consumer.disconnect();
  }
}

function parseJson(text: string): { canaryId?: unknown; seq?: unknown; stop?: unknown; attempt?: number } | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' ? (value as { canaryId?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
