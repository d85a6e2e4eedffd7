/**
 * The formats of a Kafka backup, and the pure logic around them, shared by the backup activities
 * (activities/kafka/backup.ts) and whatever restores from them.
 *
 * Layout in the backup bucket (keys built by backupKey, so unusual characters are %-escaped):
 *   backups/<backupId>/kafka/metadata.json                       KafkaMetadataBackup (JSON)
 *   backups/<backupId>/kafka/topics/<topic>/<partition>.ndjson.gz one partition's messages
 *
 * A data object is a gzip stream of newline-delimited JSON, one BackedUpMessage per line, in
 * offset order. An empty partition (or one whose range held only compacted-away, aborted or
 * control records) is an empty gzip stream: it decodes to zero lines.
 */

export const KAFKA_METADATA_FORMAT = 'ballast-kafka-metadata';
export const KAFKA_METADATA_VERSION = 1;
export const KAFKA_DATA_FORMAT = 'ndjson+gzip';

/** Throw-away consumer groups of data backups start with this; metadata backups leave them out. */
export const BACKUP_GROUP_PREFIX = 'ballast-backup-';

// ---------------------------------------------------------------------------------------------
// Messages

/** A header value as stored: base64 of the bytes; null for a null value; an array for a repeated key. */
export type StoredHeaderValue = string | null | (string | null)[];

/** One line of a data object. */
export interface BackedUpMessage {
  /** The message's offset in its partition (int64 as a decimal string, as kafkajs gives it). */
  offset: string;
  /** Milliseconds since the epoch (int64 as a decimal string, as kafkajs gives it and takes it). */
  timestamp: string;
  /** base64 of the key bytes; null for a null key. */
  key: string | null;
  /** base64 of the value bytes; null for a null value (a tombstone). */
  value: string | null;
  /** Header name → base64 value(s); {} when there are none. */
  headers: Record<string, StoredHeaderValue>;
}

/** What the backup reads from kafkajs (its KafkaMessage has the same fields). */
export interface SourceMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | null | undefined | (Buffer | string | null)[]>;
}

/** A message decoded from a data object, in the shape a kafkajs producer takes. */
export interface RestoredMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | null | (Buffer | null)[]>;
}

function b64(value: Buffer | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? Buffer.from(value) : value).toString('base64');
}

function unb64(value: string | null): Buffer | null {
  return value === null ? null : Buffer.from(value, 'base64');
}

export function toBackedUpMessage(message: SourceMessage): BackedUpMessage {
  const headers: Record<string, StoredHeaderValue> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.map(b64) : b64(value);
  }
  return { offset: message.offset, timestamp: message.timestamp, key: b64(message.key), value: b64(message.value), headers };
}

/** One data-object line, newline included. */
export function encodeMessageLine(message: SourceMessage): string {
  return `${JSON.stringify(toBackedUpMessage(message))}\n`;
}

/** Parses one data-object line (with or without its newline) back into bytes. */
export function decodeMessageLine(line: string): RestoredMessage {
  const stored = JSON.parse(line) as BackedUpMessage;
  if (typeof stored.offset !== 'string' || typeof stored.timestamp !== 'string') {
    throw new Error(`not a backed-up Kafka message: ${line.slice(0, 200)}`);
  }
  const headers: RestoredMessage['headers'] = {};
  for (const [name, value] of Object.entries(stored.headers ?? {})) {
    headers[name] = Array.isArray(value) ? value.map(unb64) : unb64(value);
  }
  return { offset: stored.offset, timestamp: stored.timestamp, key: unb64(stored.key), value: unb64(stored.value), headers };
}

// ---------------------------------------------------------------------------------------------
// Where a partition's copy ends

/**
 * Tracks one partition's copy from its low watermark up to a fixed, exclusive end (the high
 * watermark captured at the start). Offsets may have gaps (compaction, transaction markers,
 * aborted records), so the end is reached when the consumer's position reaches `end`, not when
 * `end - low` messages were seen.
 */
export class PartitionRange {
  /** The next offset not yet accounted for: everything below it was written or skipped. */
  position: bigint;
  readonly end: bigint;
  messages = 0;

  constructor(low: string | bigint, end: string | bigint) {
    this.end = BigInt(end);
    this.position = BigInt(low);
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  /**
   * Whether a fetched message is to be written: false for a redelivery of something already
   * written (a rejoin or retry can fetch again) and for anything at or past the end.
   */
  accept(offset: string | bigint): boolean {
    const o = BigInt(offset);
    if (o < this.position || o >= this.end) return false;
    this.position = o + 1n;
    this.messages += 1;
    return true;
  }

  /**
   * Records that the consumer's position moved past `lastOffset` (the last offset a fetch
   * returned, control and filtered records included): the way past gaps at the end.
   */
  passed(lastOffset: string | bigint): void {
    const next = BigInt(lastOffset) + 1n;
    if (next > this.position) this.position = next;
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata

/** Kafka's ConfigSource (DescribeConfigs v1+); kafkajs derives it for v0 responses. */
export const CONFIG_SOURCE = {
  UNKNOWN: 0,
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
  DYNAMIC_BROKER_LOGGER_CONFIG: 6,
} as const;

export interface ConfigEntryLike {
  configName: string;
  configValue: string | null;
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
}

/**
 * A topic's own overrides: entries set on the topic itself. Values the topic inherits from the
 * broker (server.properties, dynamic broker or cluster-wide defaults) are not the topic's and are
 * not kept, even though Kafka reports them with isDefault false; neither are built-in defaults.
 * Sensitive values come back null from Kafka and stay null.
 */
export function topicConfigOverrides(entries: ConfigEntryLike[]): Record<string, string | null> {
  const kept = entries.filter((e) =>
    e.configSource === CONFIG_SOURCE.TOPIC_CONFIG ? true : e.configSource === CONFIG_SOURCE.UNKNOWN && !e.isDefault,
  );
  kept.sort((a, b) => a.configName.localeCompare(b.configName));
  return Object.fromEntries(kept.map((e) => [e.configName, e.isSensitive ? null : e.configValue]));
}

/** Kafka's own topics (__consumer_offsets, __transaction_state, ...): listed, never restored. */
export function isInternalTopic(name: string): boolean {
  return name.startsWith('__');
}

/** Topic names Kafka accepts. */
export function isValidTopicName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,249}$/.test(name) && name !== '.' && name !== '..';
}

export interface KafkaMetadataBackup {
  format: typeof KAFKA_METADATA_FORMAT;
  version: typeof KAFKA_METADATA_VERSION;
  backupId: string;
  clusterId: string;
  /** kafkajs' idea of the controller: on KRaft clusters a broker id, not the quorum leader. */
  controller: number | null;
  brokers: { id: number; host: string; port: number }[];
  /** ISO times: reading started; group offsets read from/to; watermarks read from/to. */
  times: {
    startedAt: string;
    groupOffsetsFrom: string;
    groupOffsetsTo: string;
    watermarksFrom: string;
    watermarksTo: string;
  };
  topics: KafkaTopicMetadata[];
  /** Consumer groups, except the throw-away groups of running data backups and groups deleted meanwhile. */
  groups: KafkaGroupMetadata[];
  /** Topics listed at the start but deleted before they could be read: not in `topics`. */
  vanishedTopics: string[];
}

export interface KafkaTopicMetadata {
  name: string;
  internal: boolean;
  /** False for Kafka's internal topics: the cluster recreates them. */
  neededForRestore: boolean;
  partitions: number;
  replicationFactor: number;
  /** Per partition, in partition order: the replica broker ids (preferred leader first). */
  replicaAssignment: { partition: number; replicas: number[]; leader: number; isr: number[] }[];
  /** Only the topic's own overrides (see topicConfigOverrides). */
  configs: Record<string, string | null>;
  /**
   * Per partition, in partition order, read after the group offsets (so each committed offset is at
   * most its partition's high). Offsets are int64 decimal strings; high is the next offset to be
   * written as seen by a read_committed reader (the last stable offset).
   */
  watermarks: { partition: number; low: string; high: string }[];
}

export interface KafkaGroupMetadata {
  groupId: string;
  protocolType: string;
  /** Stable, Empty, Dead, ... as DescribeGroups says. */
  state: string;
  members: number;
  /** Committed offsets, as admin.fetchOffsets returns them (offset "-1": none committed). */
  offsets: { topic: string; partitions: { partition: number; offset: string; metadata: string | null }[] }[];
}

/** The details of a partition data piece. */
export interface KafkaPartitionDetails {
  topic: string;
  partition: number;
  /** The partition's low watermark when the copy started. */
  lowOffset: string;
  /** Exclusive end: the high watermark captured at the start of the activity. */
  highOffset: string;
  /** First and last offsets written; null when nothing was. */
  firstOffset: string | null;
  lastOffset: string | null;
  format: typeof KAFKA_DATA_FORMAT;
  keyEncoding: 'base64';
  valueEncoding: 'base64';
  headerEncoding: 'base64';
}
