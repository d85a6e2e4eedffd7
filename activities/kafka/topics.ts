import { backOff } from 'exponential-backoff';
import type { Admin, ITopicConfig, Kafka } from 'kafkajs';

/** Runs `run` with a connected admin client of `kafka`, disconnected afterwards whatever happens. */
export async function withAdmin<T>(kafka: Kafka, run: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await run(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Creates topics and waits until every partition has a leader and a full ISR. kafkajs' own
 * `waitForLeaders` gives up almost at once with UNKNOWN_TOPIC_OR_PARTITION on a KRaft cluster
 * that is still propagating the new topic's metadata, so the wait is done here.
 */
export async function createTopicsAndWait(admin: Admin, topics: ITopicConfig[], timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ waitForLeaders: false, topics });
  await waitForLeaders(
    admin,
    topics.map((t) => t.topic),
    timeoutMs,
  );
}

export async function waitForLeaders(admin: Admin, topics: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Each broker learns of new topics in its own time, and each read may ask another broker:
  // ready means three reads in a row say so.
  let confirmed = 0;
  for (;;) {
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics });
      const ready = found.every(
        (t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length),
      );
      confirmed = found.length === topics.length && ready ? confirmed + 1 : 0;
      if (confirmed >= 3) return;
    } catch (err) {
      confirmed = 0;
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leader and full ISR after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs an admin call again after a retriable Kafka error, refreshing the topics' metadata first.
 * Some kafkajs admin calls (fetchTopicOffsets) fail at once with NOT_LEADER_FOR_PARTITION when
 * a partition's leadership moved since the client last looked, as it does on a young cluster.
 */
export async function retryOnLeaderChange<T>(admin: Admin, topics: string[], call: () => Promise<T>, attempts = 10): Promise<T> {
  return backOff(call, {
    numOfAttempts: attempts,
    startingDelay: 200,
    timeMultiple: 1.5,
    maxDelay: 2_000,
    retry: async (err, attempt) => {
      if (attempt >= attempts || !isRetriable(err)) return false;
      await admin.fetchTopicMetadata({ topics }).catch(() => undefined);
      return true;
    },
  });
}

/**
 * A Kafka error worth another try. kafkajs gives up on its own retries of a retriable error (a
 * broker that does not know a topic created a moment ago: UNKNOWN_TOPIC_OR_PARTITION) with a
 * non-retriable KafkaJSNumberOfRetriesExceeded whose cause is that error: the cause decides.
 */
function isRetriable(err: unknown): boolean {
  const e = err as { retriable?: boolean; cause?: { retriable?: boolean } };
  return Boolean(e.retriable || ((e as { name?: string }).name === 'KafkaJSNumberOfRetriesExceeded' && e.cause?.retriable));
}

/**
 * DeleteRecords up to the given offsets. A topic config change reaches each partition leader in
 * its own time, so a leader that has not seen the added `delete` yet answers POLICY_VIOLATION:
 * those partitions are asked again for up to ~30 s (deleting up to an offset already deleted is a
 * no-op). Any other partition error fails the step, naming the partition and the error.
 */
export async function deleteRecords(admin: Admin, topic: string, partitions: { partition: number; offset: string }[]): Promise<void> {
  let left = partitions;
  await backOff(
    async () => {
      try {
        await retryOnLeaderChange(admin, [topic], () => admin.deleteTopicRecords({ topic, partitions: left }));
        left = [];
      } catch (err) {
        const failed = partitionErrors(err);
        if (!failed) throw err;
        left = left.filter((p) => failed.some((f) => f.partition === p.partition));
        const named = failed.map((f) => `${topic}[${f.partition}]: ${f.type}`).join(', ');
        throw Object.assign(new Error(`deleting records failed: ${named}`), { policyOnly: failed.every((f) => f.type === 'POLICY_VIOLATION') });
      }
    },
    { numOfAttempts: 30, startingDelay: 250, timeMultiple: 1.5, maxDelay: 2_000, retry: (err) => Boolean((err as { policyOnly?: boolean }).policyOnly) },
  );
}

/** The per-partition errors of a kafkajs DeleteTopicRecords failure (its own, or its cause's). */
function partitionErrors(err: unknown): { partition: number; type: string }[] | undefined {
  const e = err as { partitions?: { partition: number; error?: { type?: string } }[]; cause?: unknown };
  const partitions = e.partitions ?? (e.cause as { partitions?: { partition: number; error?: { type?: string } }[] } | undefined)?.partitions;
  return partitions?.filter((p) => p.error).map((p) => ({ partition: p.partition, type: p.error?.type ?? 'unknown error' }));
}

/**
 * Deletes a consumer group of ballast's own; it may take a moment to become empty after its
 * consumer leaves. One still there after the last attempt is left behind: it never committed offsets.
 */
export async function deleteConsumerGroup(admin: Admin, groupId: string): Promise<void> {
  await backOff(() => admin.deleteGroups([groupId]), {
    numOfAttempts: 20,
    startingDelay: 250,
    timeMultiple: 1,
    retry: (err) => {
      const groups = (err as { groups?: { error?: { type?: string } }[] }).groups ?? [];
      const type = groups[0]?.error?.type ?? (err as { type?: string }).type;
      return type !== 'GROUP_ID_NOT_FOUND';
    },
  }).catch(() => undefined);
}
