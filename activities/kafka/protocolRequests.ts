/**
 * Two requests kafkajs cannot make, sent over @platformatic/kafka's connection and protocol
 * encoders: DescribeQuorum (which node is the KRaft active controller) and ElectLeaders (a
 * preferred leader election). Any broker forwards both to the active controller.
 *
 * Kafka's own tools answer the same questions, but each call starts a JVM: ~2.5 s on a 2-core
 * machine, once or twice per broker in a roll. These requests take milliseconds.
 */
import type { Connection } from '@platformatic/kafka' with { 'resolution-mode': 'import' };

export interface KafkaAddress {
  host: string;
  port: number;
}

const DESCRIBE_QUORUM = 55;
const ELECT_LEADERS = 43;
const ELECT_LEADERS_VERSION = 2;
const PREFERRED_ELECTION = 0;
const ELECTION_NOT_NEEDED = 84;
const METADATA_TOPIC = '__cluster_metadata';

// The package is ESM-only and this project compiles to CommonJS: loaded with import().
const protocol = () => import('@platformatic/kafka');

export interface ElectionOutcome {
  /** Partitions whose leadership moved to the preferred replica. */
  elected: number;
  /** Partitions whose preferred replica already led. */
  alreadyElected: number;
  /** Partitions the controller could not elect for, with Kafka's error. */
  failed: { topic: string; partition: number; error: string }[];
}

/**
 * Runs `request` on the brokers in the order given until one answers: a broker stopped or
 * stopping mid-roll must not fail the question. An error the cluster answered with is final.
 */
async function onAnyBroker<T>(brokers: KafkaAddress[], timeoutMs: number, request: (c: Connection) => Promise<T>): Promise<T> {
  const { Connection, ResponseError } = await protocol();
  const failures: string[] = [];
  for (const broker of brokers) {
    const connection = new Connection('ballast', { connectTimeout: Math.min(timeoutMs, 5_000), requestTimeout: timeoutMs });
    try {
      await connection.connect(broker.host, broker.port);
      return await request(connection);
    } catch (err) {
      if (err instanceof ResponseError) throw err;
      failures.push(`${broker.host}:${broker.port}: ${(err as Error).message}`);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }
  throw new Error(`no Kafka broker answered: ${failures.join('; ')}`);
}

/**
 * Whether the cluster answers DescribeQuorum v2 (Kafka 3.9 and later), the only version the
 * protocol library speaks. Older clusters are asked through Kafka's own tool instead.
 */
export async function supportsDescribeQuorum(brokers: KafkaAddress[], timeoutMs: number): Promise<boolean> {
  const { apiVersionsV3 } = await protocol();
  return onAnyBroker(brokers, timeoutMs, async (connection) => {
    const { apiKeys } = await apiVersionsV3.api.async(connection, 'ballast', '1');
    const entry = apiKeys.find((a) => a.apiKey === DESCRIBE_QUORUM);
    return entry !== undefined && entry.minVersion <= 2 && entry.maxVersion >= 2;
  });
}

/** The KRaft quorum leader (active controller); undefined while the quorum has none. */
export async function describeQuorumLeader(brokers: KafkaAddress[], timeoutMs: number): Promise<number | undefined> {
  const { describeQuorumV2 } = await protocol();
  return onAnyBroker(brokers, timeoutMs, async (connection) => {
    const response = await describeQuorumV2.api.async(connection, [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0 }] }]);
    const partition = response.topics.find((t) => t.topicName === METADATA_TOPIC)?.partitions[0];
    if (!partition) throw new Error(`DescribeQuorum answered without the ${METADATA_TOPIC} partition`);
    return partition.leaderId >= 0 ? partition.leaderId : undefined;
  });
}

/** A preferred leader election on every partition whose preferred replica does not lead. */
export async function electPreferredLeadersEverywhere(brokers: KafkaAddress[], timeoutMs: number): Promise<ElectionOutcome> {
  const { createAPI, Writer, ResponseError } = await protocol();
  // ElectLeaders v2 (KIP-460, flexible encoding): a null topic list means every partition.
  const electLeaders = createAPI<[number], ElectionOutcome>(
    ELECT_LEADERS,
    ELECT_LEADERS_VERSION,
    (electionTimeoutMs: number) =>
      Writer.create()
        .appendInt8(PREFERRED_ELECTION)
        .appendArray(null, () => undefined)
        .appendInt32(electionTimeoutMs)
        .appendTaggedFields(),
    (_correlationId, apiKey, apiVersion, reader) => {
      reader.readInt32(); // throttle_time_ms
      const errorCode = reader.readInt16();
      const outcome: ElectionOutcome = { elected: 0, alreadyElected: 0, failed: [] };
      reader.readArray((r) => {
        const topic = r.readString();
        r.readArray((p) => {
          const partition = p.readInt32();
          const code = p.readInt16();
          const message = p.readNullableString();
          if (code === 0) outcome.elected++;
          else if (code === ELECTION_NOT_NEEDED) outcome.alreadyElected++;
          else outcome.failed.push({ topic, partition, error: message || `error code ${code}` });
        });
      });
      reader.readTaggedFields();
      if (errorCode !== 0) throw new ResponseError(apiKey, apiVersion, { '': [errorCode, null] }, outcome);
      return outcome;
    },
  );
  // The controller answers once the election is done or its own timeout passed: it gets less
  // time than the request, so its answer arrives before the request gives up.
  const electionTimeoutMs = Math.max(timeoutMs - 5_000, 1_000);
  return onAnyBroker(brokers, timeoutMs, (connection) => electLeaders.async(connection, electionTimeoutMs));
}

/** Each broker's own list of topic names, asked of that broker alone; undefined where it did not answer. */
export async function topicsOnEachBroker(brokers: KafkaAddress[], timeoutMs: number): Promise<(string[] | undefined)[]> {
  return (await topicIdsOnEachBroker(brokers, timeoutMs)).map((ids) => ids && [...ids.keys()]);
}

/**
 * Each broker's own topics, name to topic id, asked of that broker alone; undefined where it did
 * not answer. A topic deleted and created again under its name gets another id (kafkajs does
 * not read ids).
 */
export async function topicIdsOnEachBroker(brokers: KafkaAddress[], timeoutMs: number): Promise<(Map<string, string> | undefined)[]> {
  const { metadataV12 } = await protocol();
  return Promise.all(
    brokers.map(async (broker) => {
      const answer = await onAnyBroker([broker], timeoutMs, (connection) => metadataV12.api.async(connection, null, false, false)).catch(
        () => undefined,
      );
      return answer && new Map(answer.topics.flatMap((t) => (t.errorCode === 0 && t.name ? [[t.name, t.topicId] as const] : [])));
    }),
  );
}

/**
 * Every topic name the reachable brokers list, once they agree. A topic created or deleted a
 * moment ago reaches each broker's metadata in its own time, so one broker's listing can miss a
 * new topic, and a later read from a broker that has not caught up would call it gone. This asks
 * every broker until all that answer list the same topics (at most `settleMs`; after that, the
 * union). Undefined when no broker answered.
 */
export async function settledTopicNames(brokers: KafkaAddress[], timeoutMs: number, settleMs: number): Promise<string[] | undefined> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const answers = (await topicsOnEachBroker(brokers, timeoutMs)).filter((a): a is string[] => a !== undefined);
    if (answers.length === 0) return undefined;
    const union = [...new Set(answers.flat())].sort();
    if (answers.every((a) => a.length === union.length) || Date.now() >= deadline) return union;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Waits until every configured broker lists each of `topics` in its own metadata: a topic just
 * created is usable from any client only then. Throws, naming the brokers still missing one,
 * after `timeoutMs`.
 */
export async function waitForTopicsOnEveryBroker(brokers: KafkaAddress[], topics: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answers = await topicsOnEachBroker(brokers, 10_000);
    const lagging = brokers.flatMap((broker, i) => {
      const listed = new Set(answers[i] ?? []);
      const missing = topics.filter((t) => !listed.has(t));
      return answers[i] === undefined ? [`${broker.host}:${broker.port} (no answer)`] : missing.length ? [`${broker.host}:${broker.port} (${missing.slice(0, 3).join(', ')})`] : [];
    });
    if (lagging.length === 0) return;
    if (Date.now() >= deadline) throw new Error(`after ${timeoutMs / 1000} s, not every broker lists the new topics: ${lagging.join('; ')}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
