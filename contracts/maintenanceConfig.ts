/**
 * ballast.yaml's `maintenance` section: the window compaction runs in, and what it does in each
 * system. Every field has a default, so `maintenance: {}` (or no section) is a complete policy:
 * merges and vacuums on, everything destructive off.
 */
import { z } from 'zod';
import { minutesOfDay, WEEKDAYS } from './maintenanceWindow';

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier (letters, digits, underscore)');

/** The classes of destructive step; config may pre-approve some of them (never row deletes). */
export const DESTRUCTIVE_CLASSES = ['partitionDrop', 'rowDelete', 'kafkaConfig', 'objectExpiry', 'recordDelete'] as const;
export type DestructiveClass = (typeof DESTRUCTIVE_CLASSES)[number];

const mergePolicy = z.strictObject({
  enabled: z.boolean().optional(),
  /** A partition merges when it has more than this many active parts. */
  maxParts: z.number().int().min(1).optional(),
  /** A partition bigger than this (bytes on disk) is not merged: the merge would need as much again. */
  maxPartitionBytes: z.number().int().positive().optional(),
  /** FINAL merges every part into one; on Replacing/Collapsing engines it also changes rows (the plan says so). */
  final: z.boolean().optional(),
});

const retentionPolicy = z
  .strictObject({
    /** Keep this many calendar months, the current one included; older partitions are dropped. */
    keepMonths: z.number().int().min(1).optional(),
    /** Or: keep partitions whose newest date is within this many days. */
    keepDays: z.number().int().min(1).optional(),
  })
  .refine((r) => (r.keepMonths === undefined) !== (r.keepDays === undefined), 'set exactly one of keepMonths and keepDays');

const rowDeletePolicy = z.strictObject({
  /** A Date or DateTime column: rows with `column < cutoff` are deleted (ALTER TABLE ... DELETE). */
  column: identifier,
  keepDays: z.number().int().min(1),
});

const clickhouseTablePolicy = z.strictObject({
  database: identifier,
  /** Absent: every table of the database. */
  table: identifier.optional(),
  merge: mergePolicy.optional(),
  /** Off unless set. */
  retention: retentionPolicy.optional(),
  /** Off unless set; always waits for approval. */
  rowDelete: rowDeletePolicy.optional(),
});

const maintenanceClickhouse = z
  .strictObject({
    /** Every table's merge policy, unless `tables` says otherwise. */
    merge: z
      .strictObject({
        enabled: z.boolean().default(true),
        maxParts: z.number().int().min(1).default(5),
        maxPartitionBytes: z.number().int().positive().default(50 * 1024 ** 3),
        final: z.boolean().default(true),
        /** How long one OPTIMIZE may run on the server before it is stopped. */
        timeoutSeconds: z.number().int().min(1).default(3600),
      })
      .prefault({}),
    /** Per table or database, on top of `merge` (the most specific entry wins). */
    tables: z.array(clickhouseTablePolicy).default([]),
    /** Before each step: wait while the server runs more merges than this, or any mutation on the table. */
    maxRunningMerges: z.number().int().min(0).default(4),
  })
  .prefault({});

const schemaTable = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$/, 'must be schema.table');

const partitionRetentionPolicy = z
  .strictObject({
    /** Absent: every database of postgres.databases. */
    database: identifier.optional(),
    /** A table partitioned by RANGE on one date, timestamp or timestamptz column. */
    table: schemaTable,
    /** Keep this many calendar months, the current one included; partitions wholly before them are dropped. */
    keepMonths: z.number().int().min(1).optional(),
    /** Or: drop partitions whose upper bound is this many days ago or older. */
    keepDays: z.number().int().min(1).optional(),
  })
  .refine((r) => (r.keepMonths === undefined) !== (r.keepDays === undefined), 'set exactly one of keepMonths and keepDays');

const maintenancePostgres = z
  .strictObject({
    vacuum: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** Vacuum a table whose dead tuples are more than this share of its live ones... */
        deadTupleRatio: z.number().min(0).default(0.1),
        /** ...and at least this many (a tiny table is not worth a step)... */
        minDeadTuples: z.number().int().min(0).default(1000),
        /** ...or whose last vacuum (manual or auto) is older than this. */
        staleAfterDays: z.number().int().min(1).default(30),
        /** Every statement gives up waiting for a lock after this long, so readers are never blocked behind it. */
        lockTimeoutMs: z.number().int().min(1).max(60_000).default(2000),
        /** Retries after a lock timeout, with a pause between. */
        retries: z.number().int().min(0).default(5),
        /** "schema.table" names that get VACUUM FULL (an exclusive lock); nothing else ever does. */
        full: z.array(schemaTable).default([]),
      })
      .prefault({}),
    /** Partition retention: detach, then drop, the partitions older than the period. Off unless listed. */
    retention: z.array(partitionRetentionPolicy).default([]),
  })
  .prefault({});

const topicPolicy = z
  .strictObject({
    topic: z.string().min(1).max(249),
    retentionMs: z.number().int().min(-1).optional(),
    retentionBytes: z.number().int().min(-1).optional(),
    cleanupPolicy: z.enum(['delete', 'compact', 'compact,delete']).optional(),
    /** Off unless set: delete the records older than this many days (DeleteRecords, per partition). */
    deleteRecordsOlderThanDays: z.number().int().min(1).optional(),
  })
  .refine(
    (t) => t.retentionMs !== undefined || t.retentionBytes !== undefined || t.cleanupPolicy !== undefined || t.deleteRecordsOlderThanDays !== undefined,
    'set at least one of retentionMs, retentionBytes, cleanupPolicy, deleteRecordsOlderThanDays',
  )
  // Kafka refuses DeleteRecords on a compact-only topic, and a compacted topic keeps each key's latest value whatever its age.
  .refine((t) => !(t.cleanupPolicy === 'compact' && t.deleteRecordsOlderThanDays !== undefined), {
    path: ['deleteRecordsOlderThanDays'],
    message: 'needs a cleanup.policy with delete: this policy sets cleanupPolicy compact',
  });

const expiryRule = z.strictObject({
  /** Absent: the backup bucket. */
  bucket: z.string().min(3).max(63).optional(),
  /** A folder, ending in "/": objects under it older than keepDays are deleted. */
  prefix: z.string().regex(/^[^/].*\/$/, 'must be a folder: not starting with "/", ending with "/"'),
  keepDays: z.number().int().min(0),
});

export const maintenanceSchema = z
  .strictObject({
    window: z
      .strictObject({
        /** UTC, HH:MM. */
        start: z
          .string()
          .refine((s) => minutesOfDay(s) !== undefined, 'must be HH:MM (24-hour, UTC)')
          .default('02:00'),
        durationMinutes: z.number().int().min(1).max(24 * 60).default(120),
        days: z.array(z.enum(WEEKDAYS)).min(1).default([...WEEKDAYS]),
      })
      .prefault({}),
    /**
     * A Temporal Schedule starts compaction as the window opens (its cron comes from the window).
     * Off until turned on: every worker start creates or updates it, and a worker started on a
     * copy of the config (a test's, a benchmark's) would otherwise point it at its own task queue.
     */
    schedule: z
      .strictObject({
        enabled: z.boolean().default(false),
        scheduleId: z.string().min(1).default('ballast-maintenance'),
      })
      .prefault({}),
    clickhouse: maintenanceClickhouse,
    postgres: maintenancePostgres,
    kafka: z.strictObject({ topics: z.array(topicPolicy).default([]) }).prefault({}),
    buckets: z.strictObject({ expire: z.array(expiryRule).default([]) }).prefault({}),
    /** Destructive classes that run without waiting for a person. Row deletes are always approved. */
    preApproved: z.array(z.enum(DESTRUCTIVE_CLASSES)).default([]),
    /** Back up exactly the partitions to be dropped (platformBackup) before dropping them. */
    backupBeforeDrop: z.boolean().default(false),
    /** Before each step, wait this long at most for a busy server, then skip the step, saying why. */
    busyWaitSeconds: z.number().int().min(0).default(300),
  })
  .superRefine((m, ctx) => {
    const rowDeletes = m.preApproved.indexOf('rowDelete');
    if (rowDeletes >= 0) ctx.addIssue({ code: 'custom', path: ['preApproved', rowDeletes], message: 'row deletes always wait for an approval; they cannot be pre-approved' });
  })
  .prefault({});

export type MaintenanceConfig = z.infer<typeof maintenanceSchema>;
