/**
 * The shape of ballast.yaml, as a zod schema with its defaults and cross-field rules. Pure: the
 * worker reads and validates the file (workers/config.ts); activities receive the result.
 */
import { z } from 'zod';
import { cronProblem } from './cron';
import { COMPONENTS } from './backupTypes';
import { maintenanceSchema } from './maintenanceConfig';

/**
 * A secret is never written in the config itself: it names where the worker finds it, so that
 * nothing secret travels in workflow inputs, results or history.
 */
const secretRef = z.union([
  z.strictObject({ env: z.string().min(1).describe('name of an environment variable') }),
  z.strictObject({ file: z.string().min(1).describe('path of a file holding the secret') }),
]);
export type SecretRef = z.infer<typeof secretRef>;

const hostName = z.string().min(1);
const port = z.number().int().min(1).max(65535);
const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier (letters, digits, underscore)');
// S3 bucket naming rules, simplified to the common subset every S3-compatible store accepts.
const bucketName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)');
/** Postgres truncates longer identifiers (NAMEDATALEN - 1); `identifier` allows no more either. */
const MAX_IDENTIFIER = 63;
const MAX_BUCKET_NAME = 63;
const MAX_TOPIC_NAME = 249;

/**
 * Every URL in the config. The config reaches activities, reports and workflow history, so a
 * URL must not carry a credential: `instead` names the secret fields that do.
 */
const credentialFreeUrl = (instead: string) =>
  z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).superRefine((text, ctx) => {
    // Refinements run even when the URL check above failed.
    if (!URL.canParse(text)) return;
    const url = new URL(text);
    if (url.username || url.password) {
      ctx.addIssue({ code: 'custom', message: `must not carry a user name or password: it would reach workflow history; use ${instead} instead` });
    }
    // The ClickHouse client, for one, reads access_token and http_header_* from the query.
    for (const key of new Set(url.searchParams.keys())) {
      if (/pass|pwd|secret|token|key|sig|cred|auth/i.test(key)) {
        ctx.addIssue({ code: 'custom', message: `must not carry a credential (query parameter "${key}"): it would reach workflow history; use ${instead} instead` });
      }
    }
  });

const temporalSchema = z.strictObject({
  address: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port').default('127.0.0.1:7233'),
  namespace: z.string().min(1).default('default'),
  taskQueue: z.string().min(1).default('ballast'),
  tls: z
    .union([
      z.literal(false),
      z.strictObject({
        serverName: z.string().optional(),
        caFile: z.string().optional(),
        certFile: z.string().optional(),
        keyFile: z.string().optional(),
      }),
    ])
    .default(false),
  apiKey: secretRef.optional(),
  /** The Temporal Web UI, for the links the ballast CLI prints (e.g. http://127.0.0.1:8233); absent: no links. */
  webUiUrl: credentialFreeUrl('temporal.apiKey').optional(),
});

const postgresSchema = z.strictObject({
  host: hostName.default('127.0.0.1'),
  port: port.default(5432),
  user: z.string().min(1),
  password: secretRef.optional(),
  /** The database used for connections that are not about one configured database (health, admin). */
  maintenanceDatabase: identifier.default('postgres'),
  databases: z.array(identifier).min(1),
});

const clickhouseSchema = z.strictObject({
  url: credentialFreeUrl('clickhouse.user and clickhouse.password (a secret reference)'),
  /** Native TCP port, used by clickhouse-client. */
  nativePort: port.default(9000),
  user: z.string().min(1).default('default'),
  password: secretRef.optional(),
  databases: z
    .array(
      z.strictObject({
        name: identifier,
        /** Tables to act on; empty means every table in the database. */
        tables: z.array(identifier).default([]),
      }),
    )
    .min(1),
});

const brokerSchema = z.strictObject({
  id: z.number().int().min(0),
  host: hostName,
  port,
});

const kafkaSchema = z
  .strictObject({
    clientId: z.string().min(1).default('ballast'),
    brokers: z.array(brokerSchema).min(1),
    /** How one broker is restarted (kafkaRollingRestart). */
    restart: z
      .strictObject({
        /**
         * local: the stack's own broker control (scripts/stack); command: `command` run per broker;
         * kubernetes: the broker's pod deleted and waited for.
         */
        backend: z.enum(['local', 'command', 'kubernetes']).default('local'),
        /** Program and arguments, run without a shell; {id} and {host} are replaced per broker. */
        command: z.array(z.string().min(1)).min(1).optional(),
        kubernetes: z
          .strictObject({
            kubectl: z.string().min(1).default('kubectl'),
            namespace: z.string().min(1).default('kafka'),
            /** {id} is replaced with the broker id. */
            podName: z.string().min(1).default('kafka-{id}'),
            context: z.string().min(1).optional(),
          })
          .prefault({}),
      })
      .prefault({}),
    /**
     * Kafka's bin directory, for kafka-metadata-quorum.sh on clusters older than 3.9 (which do
     * not answer DescribeQuorum v2); absent: the local stack's jars.
     */
    toolsDir: z.string().min(1).optional(),
    roll: z
      .strictObject({
        /** How long a broker may stay unsafe to restart (ISR at min.insync.replicas) before the roll stops. */
        safetyTimeoutSeconds: z.number().positive().default(300),
        safetyBackoffSeconds: z.number().positive().default(2),
        safetyBackoffMaxSeconds: z.number().positive().default(30),
        /** After the restart is asked for: the broker leaves the cluster... */
        brokerGoneTimeoutSeconds: z.number().positive().default(120),
        /** ...comes back... */
        brokerBackTimeoutSeconds: z.number().positive().default(300),
        /** ...and every partition is fully replicated again. */
        replicationTimeoutSeconds: z.number().positive().default(600),
        preferredLeaderElection: z.boolean().default(true),
        approvalPerBroker: z.boolean().default(false),
        canaryTopic: z.string().min(1).default('ballast-canary'),
        /**
         * Gap between canary messages. Around a leadership change the producer is held by its
         * one message in flight anyway, so a denser stream finds no more; at 20 ms it cost the
         * three brokers half a core (measured), which slowed the restarts it watches.
         */
        canaryIntervalMs: z.number().int().min(1).default(100),
      })
      .prefault({}),
  })
  .superRefine((kafka, ctx) => {
    if (kafka.restart.backend === 'command' && !kafka.restart.command) {
      ctx.addIssue({ code: 'custom', path: ['restart', 'command'], message: 'required when restart.backend is command, e.g. [ssh, "{host}", sudo, systemctl, restart, kafka]' });
    }
    const ids = kafka.brokers.map((b) => b.id);
    ids.forEach((id, i) => {
      if (ids.indexOf(id) !== i) {
        ctx.addIssue({ code: 'custom', path: ['brokers', i, 'id'], message: `duplicate broker id ${id}` });
      }
    });
    // Host names are case-insensitive.
    const addresses = kafka.brokers.map((b) => `${b.host.toLowerCase()}:${b.port}`);
    addresses.forEach((address, i) => {
      const first = addresses.indexOf(address);
      if (first !== i) {
        const { host, port } = kafka.brokers[i]!;
        ctx.addIssue({ code: 'custom', path: ['brokers', i], message: `${host}:${port} is also the address of broker ${kafka.brokers[first]!.id} (kafka.brokers.${first}): each broker needs its own host:port` });
      }
    });
  });

const objectStoreSchema = z.strictObject({
  endpoint: credentialFreeUrl('objectStore.accessKeyId and objectStore.secretAccessKey (secret references)').optional(),
  region: z.string().min(1).default('us-east-1'),
  /** Path-style addressing, which MinIO and most self-hosted S3 stores need. */
  forcePathStyle: z.boolean().default(true),
  accessKeyId: secretRef.optional(),
  secretAccessKey: secretRef.optional(),
  /** Buckets holding platform data. */
  buckets: z.array(bucketName).default([]),
  /** Where backups and reports are written. */
  backupBucket: bucketName,
});

const healthCheckSchema = z
  .strictObject({
    /** Each system's check must answer within this many seconds. */
    timeoutSeconds: z.number().positive().max(600).default(10),
  })
  .prefault({});

/** A Temporal Schedule's settings; absent from the config, the object of its defaults. */
const scheduleSchema = (defaults: { scheduleId: string; cron: string; enabled: boolean }) => scheduleObject(defaults).prefault({});

/** The same settings, for a schedule that exists only when the config names it. */
const scheduleObject = (defaults: { scheduleId: string; cron: string; enabled: boolean }) =>
  z
    .strictObject({
      enabled: z.boolean().default(defaults.enabled),
      /** Distinct per deployment when several share one Temporal namespace. */
      scheduleId: z.string().min(1).default(defaults.scheduleId),
      /** Cron in UTC (contracts/cron.ts says what is accepted). */
      cron: z
        .string()
        .min(1)
        .superRefine((cron, ctx) => {
          const problem = cronProblem(cron);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .default(defaults.cron),
      /** How late a missed run (the Temporal service was down) may still start. */
      catchupWindowMinutes: z.number().int().min(1).default(60),
    });

const backupSchema = z
  .strictObject({
    /** How many backup pieces (a database, a table, a topic, a bucket) run at once. */
    concurrency: z.number().int().min(1).max(32).default(3),
    /** Topics whose messages are backed up; every topic's metadata and offsets always are. */
    kafkaDataTopics: z.array(z.string().min(1)).default([]),
    /** A pg_dump at least as new as the server; searched in the usual places when absent. */
    pgDumpPath: z.string().min(1).optional(),
    /**
     * The worker signs every manifest with this key (HMAC-SHA256, at least 32 characters, e.g. 32
     * random bytes in hex), and a restore refuses a manifest it did not sign. Required in
     * production; without it, manifests are written unsigned and a restore accepts them only
     * when told to (allowUnsignedBackup).
     */
    manifestKey: secretRef.optional(),
    /** Keys that signed earlier backups, after a rotation: accepted when checking, never used to sign. */
    previousManifestKeys: z.array(secretRef).default([]),
    /** Nightly at 02:00 UTC by default. */
    schedule: scheduleSchema({ scheduleId: 'ballast-nightly-backup', cron: '0 2 * * *', enabled: true }),
    retention: z
      .strictObject({
        /** The daily, weekly and monthly slots count complete backups only. */
        daily: z.number().int().min(0).default(7),
        weekly: z.number().int().min(0).default(4),
        monthly: z.number().int().min(0).default(6),
        /** Partial backups (a component skipped or narrowed) kept besides: the newest this many. */
        partial: z.number().int().min(0).default(3),
        incompleteGraceHours: z.number().positive().default(24),
      })
      .prefault({}),
  })
  .prefault({});

const approvalsSchema = z
  .strictObject({
    /**
     * Approvers' SSH public keys, in git's allowed-signers format (`<principal> <key type> <key>`
     * per line; relative to this file). Set: every approval must carry an SSH signature from a
     * listed key. Absent (demo and staging only): a typed name approves, and reports say "unsigned".
     */
    allowedSignersFile: z.string().min(1).optional(),
    /** Who may approve a destructive plan (signer principals, or names when unsigned); empty: anyone the file lists, or any name. */
    approvers: z.array(z.string().min(1)).default([]),
    /** The person who started the run, as Temporal recorded it, may not approve it. */
    fourEyes: z.boolean().default(true),
    /** With no answer, a reminder goes out after this long... */
    reminderAfterMinutes: z.number().positive().default(15),
    /** ...and the gate fails closed (nothing touched) after this long. */
    timeoutMinutes: z.number().positive().default(60),
  })
  .prefault({});

const restoreSchema = z
  .strictObject({
    /** Recovery time objective: incident start to verified restore. */
    rtoTargetMinutes: z.number().positive().default(60),
    /** Recovery point objective: data written this long before the incident may be lost. */
    rpoTargetMinutes: z.number().positive().default(1440),
    /** Restore pieces at once. */
    concurrency: z.number().int().min(1).max(16).default(3),
    /** A pg_restore at least as new as the dumps; searched in the usual places when absent. */
    pgRestorePath: z.string().min(1).optional(),
  })
  .prefault({});

const drillSchema = z
  .strictObject({
    /** Appended to Postgres and ClickHouse databases, Kafka topics and groups for the scratch copy. */
    suffix: z.string().regex(/^_[a-z0-9_]{1,20}$/, 'must be _ then lowercase letters, digits, underscores').default('_drill'),
    /** Appended to bucket names for the scratch copy (bucket names allow no underscore). */
    bucketSuffix: z
      .string()
      .regex(/^-[a-z0-9-]{0,19}[a-z0-9]$/, 'must be - then lowercase letters, digits, hyphens, ending in a letter or digit (as bucket names must)')
      .default('-drill'),
    /**
     * A drill started by its own schedule (drill.schedule) skips the start gate: it only touches
     * scratch targets. The report says so.
     */
    schedulePreApproved: z.boolean().default(true),
    /** Every drill, however started, skips the start gate (scratch targets only). */
    scratchPreApproved: z.boolean().default(false),
    schedule: scheduleSchema({ scheduleId: 'ballast-monthly-drill', cron: '0 3 1 * *', enabled: true }),
  })
  .prefault({});

const notifySchema = z
  .strictObject({
    /** A Slack-compatible incoming webhook (POST {"text": ...}); log-only when absent. A secret: it grants posting. */
    webhookUrl: secretRef.optional(),
    timeoutSeconds: z.number().positive().max(60).default(10),
  })
  .prefault({});

/** Where the worker serves Prometheus metrics (workers/metrics.ts). */
const metricsSchema = z
  .strictObject({
    /** ballast's own metrics, and the SDK's appended, on GET /metrics; absent: no metrics endpoint. */
    port: port.optional(),
    host: hostName.default('127.0.0.1'),
    /** Where the Temporal SDK's runtime exports its own metrics, read back by ballast's endpoint; absent: no SDK metrics. */
    sdkPort: port.optional(),
  })
  .superRefine((metrics, ctx) => {
    if (metrics.sdkPort !== undefined && metrics.sdkPort === metrics.port) {
      ctx.addIssue({ code: 'custom', path: ['sdkPort'], message: `${metrics.sdkPort} is also metrics.port: the SDK's exporter needs a port of its own` });
    }
  })
  .prefault({});

/**
 * demoReset: what a demo reset wipes and how it asks. The inventory is the config's own (every
 * configured Postgres database, ClickHouse table, bucket); Kafka topics are listed here, since
 * the kafka section names brokers only.
 */
const demoResetSchema = z
  .strictObject({
    /** Components a reset acts on; the rest are left alone, like `keep`. */
    components: z.array(z.enum(COMPONENTS)).min(1).default([...COMPONENTS]),
    /** Components kept as they are when the input names no `keep`. */
    keep: z.array(z.enum(COMPONENTS)).default([]),
    /** A backup every reset restores after the wipe (the "golden" demo data); absent: reseed empty. */
    goldenBackupId: z.string().min(1).optional(),
    /** Topics whose messages are purged; empty: every topic but Kafka's internal ones and the marker topic. */
    kafkaTopics: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name')).default([]),
    /** The topic whose presence marks the Kafka cluster as a demo (written by the demo-marker command). */
    kafkaMarkerTopic: z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name').default('__ballast_demo'),
    /** An unconfirmed reset fails closed, nothing touched, after this long. */
    confirmationTimeoutMinutes: z.number().positive().default(15),
    /** How long the Postgres TRUNCATE waits for its table locks before it gives up (and retries). */
    lockTimeoutSeconds: z.number().positive().max(600).default(10),
    /** A recurring reset (a public demo, nightly); it runs forced: nobody is there to confirm. Absent: none. */
    schedule: scheduleObject({ scheduleId: 'ballast-demo-reset', cron: '0 4 * * *', enabled: true }).optional(),
  })
  .prefault({});

/** The local stack only; the worker ignores it. */
const stackSchema = z.strictObject({
  /**
   * A second, current ClickHouse engine (chdb-core's embedded `clickhouse local`) beside the
   * clickhouse section's server; absent: the stack does not run it.
   */
  clickhouseCurrent: z.strictObject({ httpPort: port, nativePort: port }).optional(),
});

const sectionsSchema = z.strictObject({
  environment: z.enum(['demo', 'staging', 'production']),
  temporal: temporalSchema.prefault({}),
  postgres: postgresSchema,
  clickhouse: clickhouseSchema,
  kafka: kafkaSchema,
  objectStore: objectStoreSchema,
  healthCheck: healthCheckSchema,
  backup: backupSchema,
  approvals: approvalsSchema,
  restore: restoreSchema,
  drill: drillSchema,
  notify: notifySchema,
  metrics: metricsSchema,
  demoReset: demoResetSchema,
  /** compaction: the maintenance window and what it does (contracts/maintenanceConfig.ts). */
  maintenance: maintenanceSchema,
  stack: stackSchema.optional(),
});
type Sections = z.infer<typeof sectionsSchema>;

/** A cross-field rule's finding: the field it is about, and what is wrong with it. */
interface Problem {
  path: (string | number)[];
  message: string;
}

/** [index, index of its first occurrence] for every key seen before. */
function repeats(keys: readonly string[]): [number, number][] {
  return keys.flatMap((key, i): [number, number][] => {
    const first = keys.indexOf(key);
    return first === i ? [] : [[i, first]];
  });
}

function productionProblems(config: Sections): Problem[] {
  if (config.environment !== 'production') return [];
  // In production a typed name must never be enough, nor one person's yes to their own run,
  // nor the local stack's broker control.
  const problems: Problem[] = [];
  if (!config.approvals.allowedSignersFile) {
    problems.push({ path: ['approvals', 'allowedSignersFile'], message: 'required when environment is production: approvals must be signed (git allowed-signers format)' });
  }
  if (!config.approvals.fourEyes) {
    problems.push({ path: ['approvals', 'fourEyes'], message: 'must be true when environment is production' });
  }
  if (!config.backup.manifestKey) {
    problems.push({ path: ['backup', 'manifestKey'], message: 'required when environment is production: backups must be signed so that a restore can tell them from forged ones' });
  }
  if (config.kafka.restart.backend === 'local') {
    problems.push({ path: ['kafka', 'restart', 'backend'], message: 'must not be local when environment is production (local controls the stack\'s own brokers)' });
  }
  return problems;
}

/** A demo reset refuses outside `demo` anyway; a schedule for one elsewhere is a mistake to catch at load. */
function demoResetProblems(config: Sections): Problem[] {
  const { schedule, kafkaTopics, kafkaMarkerTopic } = config.demoReset;
  const problems: Problem[] = [];
  if (schedule?.enabled && config.environment !== 'demo') {
    problems.push({ path: ['demoReset', 'schedule', 'enabled'], message: `must not be true when environment is ${config.environment}: a demo reset runs only where environment is demo` });
  }
  if (schedule && [config.backup.schedule.scheduleId, config.drill.schedule.scheduleId].includes(schedule.scheduleId)) {
    problems.push({ path: ['demoReset', 'schedule', 'scheduleId'], message: `"${schedule.scheduleId}" is another schedule's id: give each schedule its own` });
  }
  const marker = kafkaTopics.indexOf(kafkaMarkerTopic);
  if (marker >= 0) problems.push({ path: ['demoReset', 'kafkaTopics', marker], message: `"${kafkaMarkerTopic}" is demoReset.kafkaMarkerTopic: the marker is never purged` });
  return problems;
}

/** A name listed twice would be backed up, restored and torn down twice, racing itself. */
function duplicateProblems(config: Sections): Problem[] {
  const listed = (path: (string | number)[], names: readonly string[], where = ''): Problem[] =>
    repeats(names).map(([i, first]) => ({ path: [...path, i], message: `"${names[i]}" is listed twice${where} (first as ${[...path, first].join('.')})` }));
  const databases = config.clickhouse.databases.map((d) => d.name);
  return [
    ...listed(['postgres', 'databases'], config.postgres.databases),
    ...repeats(databases).map(([i, first]) => ({
      path: ['clickhouse', 'databases', i, 'name'],
      message: `"${databases[i]}" is listed twice (first as clickhouse.databases.${first}.name); list its tables in one entry`,
    })),
    ...config.clickhouse.databases.flatMap((d, i) => listed(['clickhouse', 'databases', i, 'tables'], d.tables, ` in database "${d.name}"`)),
    ...listed(['objectStore', 'buckets'], config.objectStore.buckets),
    ...listed(['backup', 'kafkaDataTopics'], config.backup.kafkaDataTopics),
  ];
}

/** Places where a restore, a drill or a roll would write over something else the config names. */
function overlapProblems(config: Sections): Problem[] {
  const problems: Problem[] = [];
  const { buckets, backupBucket } = config.objectStore;
  buckets.forEach((bucket, i) => {
    if (bucket === backupBucket) {
      problems.push({ path: ['objectStore', 'buckets', i], message: `"${bucket}" is the backup bucket (objectStore.backupBucket); a restore or drill would write over the backups` });
    }
  });
  const backupSchedule = config.backup.schedule.scheduleId;
  if (config.drill.schedule.scheduleId === backupSchedule) {
    problems.push({
      path: ['drill', 'schedule', 'scheduleId'],
      message: `"${backupSchedule}" is also backup.schedule.scheduleId: at every worker start the drill schedule would replace the backup schedule, and the backups would stop; give each schedule its own id`,
    });
  }
  const canary = config.kafka.roll.canaryTopic;
  const dataTopic = config.backup.kafkaDataTopics.indexOf(canary);
  if (dataTopic >= 0) {
    problems.push({
      path: ['kafka', 'roll', 'canaryTopic'],
      message: `"${canary}" is also backup.kafkaDataTopics.${dataTopic}: a rolling restart would write its canary messages into a topic whose data is backed up and consumed`,
    });
  }
  return problems;
}

/**
 * A drill restores every database, bucket and topic beside its source, under the source's name
 * plus the drill suffix. Those scratch names must be valid, and must not be names the config
 * already gives to something real: the drill would write over it, then tear it down.
 */
function scratchNameProblems(config: Sections): Problem[] {
  const { suffix, bucketSuffix } = config.drill;
  const families = [
    { field: 'postgres.databases', names: config.postgres.databases, at: (i: number) => ['postgres', 'databases', i], suffixField: 'suffix', added: suffix, max: MAX_IDENTIFIER, limit: "Postgres's limit for a database name" },
    { field: 'clickhouse.databases', names: config.clickhouse.databases.map((d) => d.name), at: (i: number) => ['clickhouse', 'databases', i, 'name'], suffixField: 'suffix', added: suffix, max: MAX_IDENTIFIER, limit: "ballast's limit for a database name" },
    { field: 'objectStore.buckets', names: config.objectStore.buckets, at: (i: number) => ['objectStore', 'buckets', i], suffixField: 'bucketSuffix', added: bucketSuffix, max: MAX_BUCKET_NAME, limit: "S3's limit for a bucket name" },
    { field: 'backup.kafkaDataTopics', names: config.backup.kafkaDataTopics, at: (i: number) => ['backup', 'kafkaDataTopics', i], suffixField: 'suffix', added: suffix, max: MAX_TOPIC_NAME, limit: "Kafka's limit for a topic name" },
  ];
  const problems: Problem[] = [];
  for (const { field, names, at, suffixField, added, max, limit } of families) {
    names.forEach((name, i) => {
      // A name listed twice is reported as a duplicate, and here only at its first listing.
      if (names.indexOf(name) !== i) return;
      const scratch = `${name}${added}`;
      if (scratch.length > max) {
        problems.push({
          path: ['drill', suffixField],
          message: `the scratch copy of ${field}.${i} "${name}" would be "${scratch}", ${scratch.length} characters, over ${limit} (${max}); shorten drill.${suffixField} or the name`,
        });
      }
      const taken = names.indexOf(scratch);
      if (taken >= 0) {
        problems.push({ path: at(taken), message: `"${scratch}" is the drill's scratch name for ${field}.${i} "${name}" (plus drill.${suffixField}): a drill would write over it, then tear it down` });
      }
    });
  }
  const { buckets, backupBucket } = config.objectStore;
  buckets.forEach((bucket, i) => {
    if (`${bucket}${bucketSuffix}` === backupBucket) {
      problems.push({
        path: ['objectStore', 'backupBucket'],
        message: `"${backupBucket}" is the drill's scratch name for objectStore.buckets.${i} "${bucket}" (plus drill.bucketSuffix): a drill would write over the backups, then tear them down`,
      });
    }
  });
  return problems;
}

/** The maintenance schedule replacing another schedule would stop backups or drills. */
function maintenanceScheduleProblems(config: Sections): Problem[] {
  const id = config.maintenance.schedule.scheduleId;
  const taken = [
    ['backup.schedule.scheduleId', config.backup.schedule.scheduleId],
    ['drill.schedule.scheduleId', config.drill.schedule.scheduleId],
  ].find(([, other]) => other === id);
  return taken ? [{ path: ['maintenance', 'schedule', 'scheduleId'], message: `"${id}" is also ${taken[0]}: give each schedule its own id` }] : [];
}

/**
 * Partition retention acts on the databases ballast manages, and on each table by one policy:
 * two policies for one table would each plan drops the other keeps.
 */
function partitionRetentionProblems(config: Sections): Problem[] {
  const problems: Problem[] = [];
  const first = new Map<string, number>();
  config.maintenance.postgres.retention.forEach((policy, i) => {
    if (policy.database !== undefined && !config.postgres.databases.includes(policy.database)) {
      problems.push({ path: ['maintenance', 'postgres', 'retention', i, 'database'], message: `"${policy.database}" is not in postgres.databases (${config.postgres.databases.join(', ')})` });
      return;
    }
    for (const database of policy.database === undefined ? config.postgres.databases : [policy.database]) {
      const key = `${database}: ${policy.table}`;
      const earlier = first.get(key);
      if (earlier === undefined) first.set(key, i);
      else if (earlier !== i) {
        problems.push({ path: ['maintenance', 'postgres', 'retention', i], message: `${policy.table} in database "${database}" already has a retention policy (maintenance.postgres.retention.${earlier}): one policy per table` });
        break;
      }
    }
  });
  return problems;
}

export const configSchema = sectionsSchema.superRefine((config, ctx) => {
  for (const problem of [
    ...productionProblems(config),
    ...duplicateProblems(config),
    ...overlapProblems(config),
    ...scratchNameProblems(config),
    ...demoResetProblems(config),
    ...maintenanceScheduleProblems(config),
    ...partitionRetentionProblems(config),
  ]) {
    ctx.addIssue({ code: 'custom', ...problem });
  }
});

export type Config = z.infer<typeof configSchema>;
