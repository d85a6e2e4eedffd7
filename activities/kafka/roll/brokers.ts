import { spawn } from 'node:child_process';
import path from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import * as localStackControl from '../../../localStack';
import { configPath, type Config } from '../../../workers/config';
import type { PartitionState } from '../../../contracts/brokerSafety';
import type { ActivityDeps } from '../../deps';
import { describeQuorumLeader, electPreferredLeadersEverywhere, supportsDescribeQuorum, type ElectionOutcome } from '../protocolRequests';
import { replicationFigures, type PartitionReplicas } from '../replication';
import { Failure } from '../../../contracts/failures';

/**
 * Broker control for the kafkaRollingRestart workflow: the cluster's state (with every topic's
 * effective min.insync.replicas and the KRaft quorum leader, asked with DescribeQuorum), one
 * broker's stop / start / restart through the configured backend, and the waits that follow a
 * restart.
 *
 * How the workflow drives one broker (every backend looks the same to it):
 *
 *   stop  = stopKafkaBroker({ brokerId })     local: controlled shutdown of the stack's process
 *                                             kubernetes: `kubectl delete pod` (waits for deletion)
 *                                             command: the whole restart command (down *and* up)
 *   if (!stop.goneObserved) waitBrokerGone({ brokerId })
 *   startKafkaBroker({ brokerId })            local: start the process
 *                                             kubernetes: `kubectl wait --for=condition=Ready`
 *                                             command: nothing left to do (action 'none')
 *   waitBrokerBack({ brokerId })
 *   waitReplicationRestored({ brokerId })
 *   electPreferredLeaders()                   when roll.preferredLeaderElection
 *
 * stopKafkaBroker watches the cluster metadata while it runs and reports whether it saw the
 * broker leave (goneObserved): with the command backend the broker may already be back when the
 * command returns, so a separate waitBrokerGone could never see it gone. restartKafkaBroker is
 * stop + start in one activity, for callers that need no observation in between.
 *
 * Every wait polls twice a second, heartbeats, and gives up after its timeout with a
 * non-retryable ApplicationFailure of type Failure.BrokerTimeout naming the broker, what was waited
 * for and for how long.
 */

/** A partition as the roll sees it: the safety rule's input plus the leader. */
export interface ClusterPartition extends PartitionState {
  /** Leader broker id; -1 without a leader. */
  leader: number;
}

export interface KafkaClusterState {
  clusterId: string;
  /** Broker ids in the cluster metadata (fenced or stopped brokers are not listed), ascending. */
  brokersOnline: number[];
  /** Broker ids of the config, ascending. */
  brokersConfigured: number[];
  /** Every partition of every topic, internal topics (__consumer_offsets...) included. */
  partitions: ClusterPartition[];
  /** Partitions whose ISR is smaller than their replica set. */
  underReplicated: number;
  /** Partitions without a live leader. */
  offline: number;
  /** The KRaft active controller; undefined while the quorum has no leader. */
  quorumLeader: number | undefined;
}

export interface BrokerInput {
  brokerId: number;
}

export interface BrokerWaitInput {
  brokerId: number;
  /** Defaults to the config's roll timeout for this wait. */
  timeoutSeconds?: number;
}

export type KafkaRestartBackend = Config['kafka']['restart']['backend'];

export interface BrokerStopResult {
  backend: KafkaRestartBackend;
  /** What was done: the local process stopped, the pod deleted, or the whole restart command run. */
  action: 'processStopped' | 'podDeleted' | 'restartCommand';
  durationMs: number;
  /** The broker was seen absent from the cluster metadata while the stop ran: waitBrokerGone may be skipped. */
  goneObserved: boolean;
}

export interface BrokerStartResult {
  backend: KafkaRestartBackend;
  /** 'none' for the command backend: its command already brought the broker back up. */
  action: 'processStarted' | 'podReady' | 'none';
  durationMs: number;
}

export interface BrokerRestartResult {
  backend: KafkaRestartBackend;
  durationMs: number;
  goneObserved: boolean;
}

export interface BrokerWaitResult {
  brokerId: number;
  durationMs: number;
}

export interface ReplicationRestoredResult extends BrokerWaitResult {
  /** Partitions checked at the end (every partition of the cluster). */
  partitions: number;
  /** Partitions that have a replica on the broker. */
  brokerPartitions: number;
}

export interface LeaderElectionResult {
  durationMs: number;
  /** Partitions whose leadership moved to the preferred replica. */
  elected: number;
  /** Partitions whose preferred replica already led ("no election needed"). */
  alreadyElected: number;
}

/** What the waits heartbeat. */
export interface BrokerWaitHeartbeat {
  brokerId: number;
  waitingFor: string;
  elapsedMs: number;
  last: string;
}

/** The argv the command and kubernetes backends run for one broker; undefined for the local backend. */
export interface RestartArgv {
  backend: 'command' | 'kubernetes';
  /** Takes the broker down (command: restarts it as a whole). */
  stop: string[];
  /** Waits for it to be up again (kubernetes only). */
  start?: string[];
}

/** How often heartbeats go out while a command runs. */
const POLL_MS = 1_000;
/**
 * How often a wait reads the cluster metadata: a read costs a few milliseconds, and every
 * broker's wait ends up to one interval after the fact.
 */
const WAIT_POLL_MS = 500;
const NO_CHECK = 'no check has run';
/** Output kept from a command, for error messages (the end of it). */
const OUTPUT_LIMIT = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested)

/**
 * The quorum leader from `kafka-metadata-quorum describe --status`: its `LeaderId:` line;
 * undefined when the quorum has no leader (-1). Throws when the output has no such line.
 */
export function parseQuorumLeader(output: string): number | undefined {
  const match = /^\s*LeaderId:\s*(-?\d+)\s*$/m.exec(output);
  if (!match?.[1]) {
    throw new Error(`no "LeaderId:" line in the kafka-metadata-quorum output: ${JSON.stringify(output.slice(0, 300))}`);
  }
  const id = Number(match[1]);
  return id >= 0 ? id : undefined;
}

function brokerOf(config: Config, brokerId: number): Config['kafka']['brokers'][number] {
  const broker = config.kafka.brokers.find((b) => b.id === brokerId);
  if (!Number.isInteger(brokerId) || !broker) {
    throw ApplicationFailure.create({
      message: `brokerId: ${String(brokerId)} is not a configured Kafka broker (configured: ${config.kafka.brokers.map((b) => b.id).join(', ')})`,
      type: Failure.InvalidInput,
      nonRetryable: true,
    });
  }
  return broker;
}

function substitute(template: string, broker: { id: number; host: string }): string {
  return template.replaceAll('{id}', String(broker.id)).replaceAll('{host}', broker.host);
}

/**
 * The argv the configured backend runs for one broker, with {id} and {host} replaced inside each
 * element: an element stays exactly one argument whatever the host contains, and nothing goes
 * through a shell. Undefined for the local backend (no external command).
 */
export function restartCommandFor(config: Config, brokerId: number): RestartArgv | undefined {
  const broker = brokerOf(config, brokerId);
  const restart = config.kafka.restart;
  if (restart.backend === 'local') return undefined;
  if (restart.backend === 'command') {
    if (!restart.command?.length) {
      throw ApplicationFailure.create({ message: 'kafka.restart.command is required when restart.backend is command', type: Failure.InvalidConfig, nonRetryable: true });
    }
    return { backend: 'command', stop: restart.command.map((part) => substitute(part, broker)) };
  }
  const k8s = restart.kubernetes;
  const base = [k8s.kubectl, ...(k8s.context ? ['--context', k8s.context] : []), '-n', k8s.namespace];
  const pod = substitute(k8s.podName, broker);
  const timeout = Math.ceil(config.kafka.roll.brokerBackTimeoutSeconds);
  return {
    backend: 'kubernetes',
    stop: [...base, 'delete', 'pod', pod],
    start: [...base, 'wait', '--for=condition=Ready', `pod/${pod}`, `--timeout=${timeout}s`],
  };
}

/** Brokers a roll must wait for: the partitions that replicate on a broker but have it outside their ISR. */
export function replicationProblems(
  partitions: Pick<ClusterPartition, 'topic' | 'partition' | 'replicas' | 'isr'>[],
  brokerId: number,
): { underReplicated: string[]; brokerOutOfIsr: string[]; brokerPartitions: number } {
  const name = (p: { topic: string; partition: number }) => `${p.topic}-${p.partition}`;
  const mine = partitions.filter((p) => p.replicas.includes(brokerId));
  return {
    underReplicated: partitions.filter((p) => p.isr.length < p.replicas.length).map(name),
    brokerOutOfIsr: mine.filter((p) => !p.isr.includes(brokerId)).map(name),
    brokerPartitions: mine.length,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function keepTail(current: string, chunk: Buffer): string {
  const next = current + chunk.toString('utf8');
  return next.length > OUTPUT_LIMIT ? next.slice(next.length - OUTPUT_LIMIT) : next;
}

/**
 * Runs argv[0] with argv[1..] as its arguments (no shell), heartbeating while it runs; on timeout
 * or activity cancellation it is sent SIGTERM, then SIGKILL five seconds later.
 */
function runArgv(argv: string[], timeoutMs: number, heartbeat: () => void): Promise<CommandResult> {
  const [program, ...args] = argv;
  if (!program) return Promise.reject(new Error('empty command'));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
    child.stdout.on('data', (chunk: Buffer) => (stdout = keepTail(stdout, chunk)));
    child.stderr.on('data', (chunk: Buffer) => (stderr = keepTail(stderr, chunk)));
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = () => {
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), 5_000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, timeoutMs);
    const beat = setInterval(heartbeat, POLL_MS);
    const ctx = activityContext();
    ctx?.cancelled.catch(() => terminate());
    const done = () => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      clearInterval(beat);
    };
    child.once('error', (err) => {
      done();
      reject(err);
    });
    child.once('close', (code, signal) => {
      done();
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

function describeArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./{}-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function brokerTimeout(brokerId: number, waitingFor: string, timeoutSeconds: number, waitedMs: number, last?: string): ApplicationFailure {
  return ApplicationFailure.create({
    message: `broker ${brokerId}: waited ${seconds(waitedMs)} s for it ${waitingFor}; gave up at the ${timeoutSeconds} s timeout${last ? ` (last seen: ${last})` : ''}`,
    type: Failure.BrokerTimeout,
    nonRetryable: true,
    details: [{ brokerId, waitingFor, timeoutSeconds, waitedMs, last }],
  });
}

function timeoutInput(value: number | undefined, fallback: number, field: string): number {
  const t = value ?? fallback;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    throw ApplicationFailure.create({ message: `${field}: must be a positive number of seconds (got ${String(value)})`, type: Failure.InvalidInput, nonRetryable: true });
  }
  return t;
}

/** Resolves with the promise's outcome, or { timedOut } after `ms` (the promise keeps running). */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<{ timedOut: false; value: T } | { timedOut: true }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ timedOut: true }>((resolve) => {
    timer = setTimeout(() => resolve({ timedOut: true }), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then((value) => ({ timedOut: false as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Activities

export function createKafkaBrokerActivities(deps: ActivityDeps) {
  const { config, connections } = deps;
  const roll = config.kafka.roll;
  const bootstrap = config.kafka.brokers.map((b) => `${b.host}:${b.port}`).join(',');
  const configured = config.kafka.brokers.map((b) => b.id).sort((a, b) => a - b);
  /** One metadata read during a wait: short, so a dead broker costs little of the wait. */
  const pollTimeoutMs = 5_000;
  const toolTimeoutMs = Math.max(60_000, config.healthCheck.timeoutSeconds * 1000);

  /** The local stack's broker control and tool runner. */
  const localStack = async () => localStackControl;
  /** The worker's validated config, and the file it came from (secret files resolve against it). */
  const stackOptions = () => ({ config: { config, path: configPath() } });

  async function withAdmin<T>(timeoutMs: number, fn: (admin: Admin) => Promise<T>): Promise<T> {
    const admin = connections.kafka(timeoutMs).admin();
    try {
      await admin.connect();
      return await fn(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async function onlineBrokers(timeoutMs = pollTimeoutMs): Promise<number[]> {
    return withAdmin(timeoutMs, async (admin) => (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort((a, b) => a - b));
  }

  async function partitionReplicas(admin: Admin): Promise<PartitionReplicas[]> {
    // No topic list: one metadata response with every topic, internal ones included, so a topic
    // deleted by someone else meanwhile cannot fail the read.
    const { topics } = await admin.fetchTopicMetadata();
    return topics.flatMap((t) =>
      t.partitions.map((p) => ({ topic: t.name, partition: p.partitionId, leader: p.leader, replicas: [...p.replicas], isr: [...p.isr] })),
    );
  }

  /**
   * Runs one of Kafka's tools: `<toolsDir>/<script>` when configured, else the local stack's jars
   * by class name. Returns stdout; a failure's message carries the tool's output.
   */
  async function kafkaTool(script: string, className: string, args: string[], heartbeat: () => void): Promise<string> {
    if (config.kafka.toolsDir) {
      const argv = [path.join(config.kafka.toolsDir, script), ...args];
      const result = await runArgv(argv, toolTimeoutMs, heartbeat);
      if (result.timedOut) throw new Error(`${describeArgv(argv)} did not finish within ${toolTimeoutMs / 1000} s`);
      if (result.code !== 0) {
        throw new Error(`${describeArgv(argv)} exited with ${result.code ?? result.signal}: ${(result.stderr + result.stdout).trim()}`);
      }
      return result.stdout;
    }
    const { runKafkaTool } = await localStack();
    const beat = setInterval(heartbeat, POLL_MS);
    try {
      return await runKafkaTool(className, args, { timeoutMs: toolTimeoutMs });
    } finally {
      clearInterval(beat);
    }
  }

  // Asked once per worker: whether the cluster speaks DescribeQuorum v2 (Kafka 3.9+).
  let quorumApi: Promise<boolean> | undefined;

  /** The quorum leader by DescribeQuorum, or by Kafka's own tool on clusters older than 3.9. */
  async function quorumLeader(via: 'api' | 'tool' | 'auto' = 'auto'): Promise<number | undefined> {
    if (via === 'auto') {
      if (!quorumApi) {
        quorumApi = supportsDescribeQuorum(config.kafka.brokers, pollTimeoutMs);
        // A cluster that could not be asked is asked again next time.
        quorumApi.catch(() => (quorumApi = undefined));
      }
      via = (await quorumApi) ? 'api' : 'tool';
    }
    if (via === 'api') return describeQuorumLeader(config.kafka.brokers, pollTimeoutMs);
    const output = await kafkaTool(
      'kafka-metadata-quorum.sh',
      'org.apache.kafka.tools.MetadataQuorumCommand',
      ['--bootstrap-server', bootstrap, 'describe', '--status'],
      () => activityContext()?.heartbeat({ waitingFor: 'kafka-metadata-quorum' }),
    );
    return parseQuorumLeader(output);
  }

  /** The effective min.insync.replicas of each topic: the override, else the broker's value. */
  async function minIsrByTopic(admin: Admin, topics: string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    for (let i = 0; i < topics.length; i += 100) {
      const chunk = topics.slice(i, i + 100);
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: chunk.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['min.insync.replicas'] })),
      });
      for (const resource of described.resources) {
        const entry = resource.configEntries.find((e) => e.configName === 'min.insync.replicas');
        const value = Number(entry?.configValue);
        if (!entry || !Number.isInteger(value) || value < 1) {
          throw new Error(`topic ${resource.resourceName}: no usable min.insync.replicas in DescribeConfigs (${JSON.stringify(entry?.configValue)})`);
        }
        result.set(resource.resourceName, value);
      }
    }
    return result;
  }

  async function readClusterState(): Promise<Omit<KafkaClusterState, 'quorumLeader'>> {
    return withAdmin(30_000, async (admin) => {
      const cluster = await admin.describeCluster();
      const online = cluster.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
      const replicas = await partitionReplicas(admin);
      const topics = [...new Set(replicas.map((p) => p.topic))].sort();
      const minIsr = await minIsrByTopic(admin, topics);
      const partitions: ClusterPartition[] = replicas
        .map((p) => {
          const topicMinIsr = minIsr.get(p.topic);
          if (topicMinIsr === undefined) throw new Error(`topic ${p.topic}: DescribeConfigs did not answer for it`);
          return { topic: p.topic, partition: p.partition, replicas: p.replicas, isr: p.isr, leader: p.leader, minIsr: topicMinIsr };
        })
        .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
      const figures = replicationFigures(replicas, online);
      return {
        clusterId: cluster.clusterId,
        brokersOnline: online,
        brokersConfigured: configured,
        partitions,
        underReplicated: figures.underReplicatedPartitions,
        offline: figures.offlinePartitions,
      };
    });
  }

  /**
   * Polls `check` about once a second until it reports done, heartbeating what it waits for, and
   * throws BrokerTimeout after `timeoutSeconds`. A failing check (a broker refusing connections
   * mid-restart) counts as "not yet"; its error is the "last seen" of the timeout message.
   */
  async function pollUntil<T>(
    brokerId: number,
    waitingFor: string,
    timeoutSeconds: number,
    check: () => Promise<{ done: true; value: T } | { done: false; last: string }>,
  ): Promise<{ value: T; durationMs: number }> {
    const ctx = Context.current();
    const started = Date.now();
    const deadline = started + timeoutSeconds * 1000;
    let last = NO_CHECK;
    for (;;) {
      const remaining = deadline - Date.now();
      let outcome: Awaited<ReturnType<typeof check>> | undefined;
      try {
        const attempt = await withDeadline(check(), Math.max(remaining, 0));
        // Cut off by the deadline: the previous answer stays the one reported.
        if (attempt.timedOut) last = last === NO_CHECK ? `the cluster metadata did not answer within ${timeoutSeconds} s` : last;
        else outcome = attempt.value;
      } catch (err) {
        last = `error: ${(err as Error).message}`;
      }
      if (outcome?.done) return { value: outcome.value, durationMs: Date.now() - started };
      if (outcome) last = outcome.last;
      const elapsedMs = Date.now() - started;
      ctx.heartbeat({ brokerId, waitingFor, elapsedMs, last } satisfies BrokerWaitHeartbeat);
      if (Date.now() >= deadline) throw brokerTimeout(brokerId, waitingFor, timeoutSeconds, elapsedMs, last);
      await ctx.sleep(Math.min(WAIT_POLL_MS, Math.max(deadline - Date.now(), 0)));
    }
  }

  /**
   * Watches the cluster metadata while `work` runs and reports whether the broker was seen absent.
   */
  async function watchingGone<T>(brokerId: number, work: Promise<T>): Promise<{ value: T; goneObserved: boolean }> {
    let finished = false;
    let goneObserved = false;
    const watcher = (async () => {
      while (!finished && !goneObserved) {
        try {
          const online = await onlineBrokers(3_000);
          if (!online.includes(brokerId)) goneObserved = true;
        } catch {
          // A refused connection mid-shutdown says nothing about the metadata.
        }
        if (!finished && !goneObserved) await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
      }
    })();
    try {
      const value = await work;
      return { value, goneObserved };
    } finally {
      finished = true;
      await watcher;
    }
  }

  /** Runs a backend command for a broker; non-zero exit fails with its stderr. */
  async function runBackendCommand(brokerId: number, argv: string[], timeoutSeconds: number, waitingFor: string): Promise<CommandResult> {
    const started = Date.now();
    const heartbeat = () => activityContext()?.heartbeat({ brokerId, waitingFor, elapsedMs: Date.now() - started, last: describeArgv(argv) });
    let result: CommandResult;
    try {
      result = await runArgv(argv, timeoutSeconds * 1000, heartbeat);
    } catch (err) {
      throw ApplicationFailure.create({
        message: `broker ${brokerId}: cannot run ${describeArgv(argv)}: ${(err as Error).message}`,
        type: Failure.RestartCommandFailed,
        nonRetryable: true,
      });
    }
    if (result.timedOut) {
      throw brokerTimeout(brokerId, `${waitingFor} (${describeArgv(argv)})`, timeoutSeconds, Date.now() - started, 'the command was still running; it was terminated');
    }
    if (result.code !== 0) {
      const stderr = result.stderr.trim() || result.stdout.trim() || '(no output)';
      throw ApplicationFailure.create({
        message: `broker ${brokerId}: ${describeArgv(argv)} exited with ${result.code ?? result.signal}: ${stderr}`,
        type: Failure.RestartCommandFailed,
        nonRetryable: true,
        details: [{ brokerId, argv, code: result.code, signal: result.signal, stderr: result.stderr }],
      });
    }
    return result;
  }

  /** Bounds a local-stack call, heartbeating; a failure or the timeout becomes an ApplicationFailure naming the broker. */
  async function localStep(brokerId: number, step: Promise<void>, timeoutSeconds: number, waitingFor: string, failureType: string): Promise<void> {
    // If the timeout wins, the stack's own call goes on (it has its own, longer, limit); its
    // eventual failure must not become an unhandled rejection.
    step.catch(() => undefined);
    const started = Date.now();
    const beat = setInterval(() => activityContext()?.heartbeat({ brokerId, waitingFor, elapsedMs: Date.now() - started, last: 'local stack' }), POLL_MS);
    try {
      const outcome = await withDeadline(step, timeoutSeconds * 1000);
      if (outcome.timedOut) throw brokerTimeout(brokerId, waitingFor, timeoutSeconds, Date.now() - started, 'the local stack had not finished');
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      throw ApplicationFailure.create({
        message: `broker ${brokerId}: failed after ${seconds(Date.now() - started)} s waiting for it ${waitingFor} (timeout ${timeoutSeconds} s): ${(err as Error).message}`,
        type: failureType,
        nonRetryable: true,
        details: [{ brokerId, waitingFor, timeoutSeconds, waitedMs: Date.now() - started }],
      });
    } finally {
      clearInterval(beat);
    }
  }

  async function stopBroker(brokerId: number): Promise<BrokerStopResult> {
    brokerOf(config, brokerId);
    const backend = config.kafka.restart.backend;
    const started = Date.now();
    if (backend === 'local') {
      const stack = await localStack();
      const { goneObserved } = await watchingGone(
        brokerId,
        localStep(brokerId, stack.stopBroker(brokerId, stackOptions()), roll.brokerGoneTimeoutSeconds, 'to shut down', Failure.BrokerStopFailed),
      );
      return { backend, action: 'processStopped', durationMs: Date.now() - started, goneObserved };
    }
    const argv = restartCommandFor(config, brokerId);
    if (!argv) throw new Error('unreachable: a non-local backend without a command');
    if (backend === 'kubernetes') {
      const { goneObserved } = await watchingGone(
        brokerId,
        runBackendCommand(brokerId, argv.stop, roll.brokerGoneTimeoutSeconds, 'its pod to be deleted'),
      );
      return { backend, action: 'podDeleted', durationMs: Date.now() - started, goneObserved };
    }
    // command: the one command takes the broker down and brings it back.
    const { goneObserved } = await watchingGone(
      brokerId,
      runBackendCommand(brokerId, argv.stop, roll.brokerGoneTimeoutSeconds + roll.brokerBackTimeoutSeconds, 'the restart command to finish'),
    );
    return { backend, action: 'restartCommand', durationMs: Date.now() - started, goneObserved };
  }

  async function startBroker(brokerId: number): Promise<BrokerStartResult> {
    brokerOf(config, brokerId);
    const backend = config.kafka.restart.backend;
    const started = Date.now();
    const timeoutSeconds = roll.brokerBackTimeoutSeconds;
    if (backend === 'local') {
      const stack = await localStack();
      await localStep(brokerId, stack.startBroker(brokerId, stackOptions()), timeoutSeconds, 'to start and rejoin the cluster metadata', Failure.BrokerStartFailed);
      return { backend, action: 'processStarted', durationMs: Date.now() - started };
    }
    if (backend === 'command') return { backend, action: 'none', durationMs: 0 };
    const argv = restartCommandFor(config, brokerId);
    if (!argv?.start) throw new Error('unreachable: kubernetes backend without a wait command');
    // Right after the delete the StatefulSet may not have created the new pod yet: kubectl wait
    // answers NotFound, which is retried until the timeout.
    const deadline = started + timeoutSeconds * 1000;
    for (;;) {
      const remainingSeconds = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
      try {
        await runBackendCommand(brokerId, argv.start, remainingSeconds + 10, 'its pod to be Ready');
        return { backend, action: 'podReady', durationMs: Date.now() - started };
      } catch (err) {
        const notFound = err instanceof ApplicationFailure && err.type === Failure.RestartCommandFailed && /NotFound|not found/i.test(err.message);
        if (!notFound) throw err;
        if (Date.now() >= deadline) throw brokerTimeout(brokerId, 'its pod to be created and Ready', timeoutSeconds, Date.now() - started, err.message);
        await Context.current().sleep(POLL_MS);
      }
    }
  }

  return {
    /** Brokers, every partition with its effective min.insync.replicas, URP/offline counts and the quorum leader. */
    /**
     * `withQuorumLeader: false` skips asking for the quorum leader (a JVM tool start, ~2 s) where
     * the caller does not need it: the pre-flight and the final read of a roll.
     */
    async kafkaClusterState(options: { withQuorumLeader?: boolean } = {}): Promise<KafkaClusterState> {
      const leader = options.withQuorumLeader === false ? Promise.resolve(undefined) : quorumLeader();
      leader.catch(() => undefined);
      let state: Omit<KafkaClusterState, 'quorumLeader'> | undefined;
      // A topic deleted by someone else between the metadata and the configs read fails the
      // configs read: read again.
      for (let attempt = 1; !state; attempt++) {
        try {
          state = await readClusterState();
        } catch (err) {
          if (attempt >= 3) throw err;
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      return { ...state, quorumLeader: await leader };
    },

    /**
     * The KRaft active controller (quorum leader). `via` forces one way of asking (the
     * DescribeQuorum request or Kafka's kafka-metadata-quorum tool); by default the request,
     * and the tool on clusters too old to answer it.
     */
    async describeQuorumLeader(input: { via?: 'api' | 'tool' } = {}): Promise<number> {
      const leader = await quorumLeader(input?.via);
      if (leader === undefined) {
        throw ApplicationFailure.create({ message: 'the KRaft metadata quorum has no leader (LeaderId -1)', type: Failure.NoQuorumLeader });
      }
      return leader;
    },

    /** Stop + start of one broker through the configured backend, in one activity. */
    async restartKafkaBroker(input: BrokerInput): Promise<BrokerRestartResult> {
      brokerOf(config, input?.brokerId);
      const started = Date.now();
      const stop = await stopBroker(input.brokerId);
      await startBroker(input.brokerId);
      return { backend: config.kafka.restart.backend, durationMs: Date.now() - started, goneObserved: stop.goneObserved };
    },

    /** The first half of a restart (see the file comment for what it means per backend). */
    async stopKafkaBroker(input: BrokerInput): Promise<BrokerStopResult> {
      return stopBroker(input?.brokerId);
    },

    /** The second half of a restart (see the file comment for what it means per backend). */
    async startKafkaBroker(input: BrokerInput): Promise<BrokerStartResult> {
      return startBroker(input?.brokerId);
    },

    /** Until the broker is absent from the cluster metadata. */
    async waitBrokerGone(input: BrokerWaitInput): Promise<BrokerWaitResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.brokerGoneTimeoutSeconds, 'timeoutSeconds');
      const { durationMs } = await pollUntil(brokerId, 'to leave the cluster metadata', timeoutSeconds, async () => {
        const online = await onlineBrokers();
        return online.includes(brokerId)
          ? { done: false, last: `broker ${brokerId} still in the cluster metadata (online: ${online.join(', ')})` }
          : { done: true, value: undefined };
      });
      return { brokerId, durationMs };
    },

    /** Until the broker is in the cluster metadata again. */
    async waitBrokerBack(input: BrokerWaitInput): Promise<BrokerWaitResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.brokerBackTimeoutSeconds, 'timeoutSeconds');
      const { durationMs } = await pollUntil(brokerId, 'to come back into the cluster metadata', timeoutSeconds, async () => {
        const online = await onlineBrokers();
        return online.includes(brokerId)
          ? { done: true, value: undefined }
          : { done: false, last: `broker ${brokerId} not in the cluster metadata (online: ${online.join(', ') || 'none'})` };
      });
      return { brokerId, durationMs };
    },

    /** Until no partition of the cluster is under-replicated and the broker is in the ISR of every partition it replicates. */
    async waitReplicationRestored(input: BrokerWaitInput): Promise<ReplicationRestoredResult> {
      const brokerId = input?.brokerId;
      brokerOf(config, brokerId);
      const timeoutSeconds = timeoutInput(input.timeoutSeconds, roll.replicationTimeoutSeconds, 'timeoutSeconds');
      // Each read may be answered by another broker, and brokers learn of ISR changes in their
      // own time: restored means three reads in a row say so.
      let confirmed = 0;
      const { value, durationMs } = await pollUntil(
        brokerId,
        'to rejoin the ISR of all its partitions with 0 under-replicated partitions in the cluster',
        timeoutSeconds,
        async () =>
          withAdmin(pollTimeoutMs, async (admin) => {
            const online = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
            const partitions = await partitionReplicas(admin);
            const problems = replicationProblems(partitions, brokerId);
            const clean = online.includes(brokerId) && problems.underReplicated.length === 0 && problems.brokerOutOfIsr.length === 0;
            confirmed = clean ? confirmed + 1 : 0;
            if (confirmed >= 3) {
              return { done: true as const, value: { partitions: partitions.length, brokerPartitions: problems.brokerPartitions } };
            }
            const sample = (list: string[]) => `${list.length}${list.length ? ` (${list.slice(0, 5).join(', ')}${list.length > 5 ? ', ...' : ''})` : ''}`;
            return {
              done: false as const,
              last: [
                online.includes(brokerId) ? undefined : `broker ${brokerId} not in the cluster metadata`,
                `${sample(problems.underReplicated)} under-replicated partition(s)`,
                `broker ${brokerId} out of the ISR of ${sample(problems.brokerOutOfIsr)} of its ${problems.brokerPartitions} partition(s)`,
              ]
                .filter(Boolean)
                .join('; '),
            };
          }),
      );
      return { brokerId, durationMs, ...value };
    },

    /** A preferred leader election on every partition whose preferred replica does not lead. */
    async electPreferredLeaders(): Promise<LeaderElectionResult> {
      const started = Date.now();
      let outcome: ElectionOutcome;
      try {
        outcome = await electPreferredLeadersEverywhere(config.kafka.brokers, toolTimeoutMs);
      } catch (err) {
        throw ApplicationFailure.create({ message: `preferred leader election failed: ${(err as Error).message}`, type: Failure.LeaderElectionFailed });
      }
      if (outcome.failed.length) {
        const sample = outcome.failed.slice(0, 5).map((f) => `${f.topic}-${f.partition}: ${f.error}`).join('; ');
        throw ApplicationFailure.create({
          message: `preferred leader election failed for ${outcome.failed.length} partition(s), e.g. ${sample}`,
          type: Failure.LeaderElectionFailed,
        });
      }
      return { durationMs: Date.now() - started, elected: outcome.elected, alreadyElected: outcome.alreadyElected };
    },

  };
}

export type KafkaBrokerActivities = ReturnType<typeof createKafkaBrokerActivities>;
