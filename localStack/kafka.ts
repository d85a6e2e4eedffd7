import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { backOff } from 'exponential-backoff';
import { Kafka, logLevel } from 'kafkajs';
import { StackError } from './errors';
import { healthTimeoutMs, waitHealthy, withTimeout } from './health';
import { kafkaClasspath, runKafkaTool } from './kafkaTools';
import { serviceDir } from './paths';
import { runningPid, spawnService, stopProcess } from './processes';
import type { StackPorts } from './ports';
import type { StackContext, StackService, StatusLine } from './service';

type Broker = StackPorts['kafka'][number];

const dir = serviceDir('kafka');
const clusterIdFile = path.join(dir, 'cluster-id');
const brokerLog4j = path.join(dir, 'log4j.properties');

/** Small heaps: three nodes share a developer machine with the rest of the stack. */
const JVM_OPTIONS = ['-Xms128m', '-Xmx512m', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true'];
const START_TIMEOUT_MS = 180_000;
/** Controlled shutdown moves partition leadership away first, which takes a few seconds per broker. */
const STOP_TIMEOUT_MS = 120_000;
/**
 * The last node of a cluster being stopped cannot finish a controlled shutdown: that needs a
 * controller quorum, and the other voters are gone. Kafka would wait minutes for it; the node
 * is killed after this grace instead and recovers its logs at the next start.
 */
const LAST_NODE_GRACE_MS = 5_000;
const BROKER_START_ATTEMPTS = 4;

function processName(id: number): string {
  return `kafka-${id}`;
}

function nodeDir(id: number): string {
  return path.join(dir, `node-${id}`);
}

function brokerById(ctx: StackContext, id: number): Broker {
  const broker = ctx.ports.kafka.find((b) => b.id === id);
  if (!broker) {
    throw new StackError(`no Kafka broker ${id} in the config (brokers: ${ctx.ports.kafka.map((b) => b.id).join(', ')})`);
  }
  return broker;
}

function bootstrapServers(ctx: StackContext): string[] {
  return ctx.ports.kafka.map((b) => `${b.host}:${b.port}`);
}

/** Kafka's Uuid format (base64url of 16 bytes); its tools refuse ids starting with '-', which look like options. */
function ensureClusterId(): string {
  if (existsSync(clusterIdFile)) return readFileSync(clusterIdFile, 'utf8').trim();
  let id: string;
  do id = randomBytes(16).toString('base64url');
  while (id.startsWith('-'));
  mkdirSync(dir, { recursive: true });
  writeFileSync(clusterIdFile, `${id}\n`);
  return id;
}

/** Every node is both broker and KRaft controller, so the cluster needs nothing but these three JVMs. */
function writeNodeConfig(ctx: StackContext, broker: Broker): string {
  const voters = ctx.ports.kafka.map((b) => `${b.id}@${b.host}:${b.controllerPort}`).join(',');
  const file = path.join(nodeDir(broker.id), 'server.properties');
  mkdirSync(path.join(nodeDir(broker.id), 'data'), { recursive: true });
  writeFileSync(
    file,
    [
      '# Written by scripts/stack on each start.',
      'process.roles=broker,controller',
      `node.id=${broker.id}`,
      `controller.quorum.voters=${voters}`,
      `listeners=PLAINTEXT://${broker.host}:${broker.port},CONTROLLER://${broker.host}:${broker.controllerPort}`,
      `advertised.listeners=PLAINTEXT://${broker.host}:${broker.port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${path.join(nodeDir(broker.id), 'data')}`,
      // Real replication, so that a broker restart keeps every partition writable and ISR checks mean something.
      'default.replication.factor=3',
      'min.insync.replicas=2',
      'offsets.topic.replication.factor=3',
      'transaction.state.log.replication.factor=3',
      'transaction.state.log.min.isr=2',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  return file;
}

function writeBrokerLog4j(): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    brokerLog4j,
    [
      '# Brokers log to stdout, which the stack appends to .stack/logs/kafka-<id>.log.',
      'log4j.rootLogger=INFO, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.request.logger=WARN',
      'log4j.logger.org.apache.kafka.controller=INFO',
      'log4j.logger.state.change.logger=INFO',
      '',
    ].join('\n'),
  );
}

async function ensureFormatted(broker: Broker, propertiesFile: string, clusterId: string): Promise<void> {
  if (existsSync(path.join(nodeDir(broker.id), 'data', 'meta.properties'))) return;
  await runKafkaTool('kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', propertiesFile, '--ignore-formatted']);
}

async function launchBroker(ctx: StackContext, broker: Broker, classpath: string): Promise<void> {
  const propertiesFile = writeNodeConfig(ctx, broker);
  await ensureFormatted(broker, propertiesFile, ensureClusterId());
  if (runningPid(processName(broker.id)) !== undefined) return;
  ctx.log(`kafka: starting broker ${broker.id} on ${broker.host}:${broker.port} (controller ${broker.controllerPort})`);
  await spawnService({
    name: processName(broker.id),
    command: 'java',
    args: [...JVM_OPTIONS, `-Dlog4j.configuration=file:${brokerLog4j}`, '-cp', classpath, 'kafka.Kafka', propertiesFile],
  });
}

interface ClusterView {
  /** Broker ids in the cluster metadata: fenced or stopped brokers are not listed. */
  brokers: number[];
  /** "topic-partition" of every partition whose ISR is smaller than its replica set. */
  underReplicated: string[];
}

async function clusterView(ctx: StackContext): Promise<ClusterView> {
  const kafka = new Kafka({
    clientId: `${ctx.loaded.config.kafka.clientId}-stack`,
    brokers: bootstrapServers(ctx),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: healthTimeoutMs(ctx),
    retry: { retries: 2 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const brokers = (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort((a, b) => a - b);
    const { topics } = await admin.fetchTopicMetadata();
    const underReplicated = topics.flatMap((t) =>
      t.partitions.filter((p) => p.isr.length < p.replicas.length).map((p) => `${t.name}-${p.partitionId}`),
    );
    return { brokers, underReplicated };
  } finally {
    await admin.disconnect();
  }
}

/** The KRaft leader, from Kafka's own tool: kafkajs's describeCluster().controller is not it. */
async function quorumLeader(ctx: StackContext): Promise<number | undefined> {
  const output = await runKafkaTool(
    'org.apache.kafka.tools.MetadataQuorumCommand',
    ['--bootstrap-server', bootstrapServers(ctx).join(','), 'describe', '--status'],
    { timeoutMs: Math.max(healthTimeoutMs(ctx), 30_000) },
  );
  const leader = Number(/LeaderId:\s+(-?\d+)/.exec(output)?.[1] ?? -1);
  return leader >= 0 ? leader : undefined;
}

/**
 * Every broker in the metadata, a quorum leader, and every replica back in sync: after a start
 * (an unclean stop of the last node included) the cluster is only settled once followers caught up.
 */
async function checkClusterSettled(ctx: StackContext): Promise<void> {
  const view = await withTimeout(clusterView(ctx), healthTimeoutMs(ctx), 'kafka metadata');
  const missing = ctx.ports.kafka.filter((b) => !view.brokers.includes(b.id)).map((b) => b.id);
  if (missing.length) throw new Error(`broker(s) ${missing.join(', ')} not in the cluster metadata yet`);
  if (view.underReplicated.length) throw new Error(`${view.underReplicated.length} partition(s) under-replicated`);
  if ((await quorumLeader(ctx)) === undefined) throw new Error('the metadata quorum has no leader');
}

export async function startBrokerProcess(ctx: StackContext, id: number): Promise<void> {
  // Right after a stop, the old process's listening ports can still be held for a moment: a
  // start that dies of "Address already in use" is tried again, a few times.
  await backOff(() => startBrokerOnce(ctx, id), {
    numOfAttempts: BROKER_START_ATTEMPTS,
    startingDelay: 3_000,
    timeMultiple: 1,
    jitter: 'none',
    retry: (err, attemptNumber) => {
      if (!/Address already in use/.test((err as Error).message)) return false;
      // backOff asks after the last attempt too, when there is no next one to announce.
      if (attemptNumber < BROKER_START_ATTEMPTS) {
        ctx.log(`kafka: broker ${id} found its port still in use; starting it again (attempt ${attemptNumber + 1})`);
      }
      return true;
    },
  });
}

async function startBrokerOnce(ctx: StackContext, id: number): Promise<void> {
  const broker = brokerById(ctx, id);
  const classpath = await kafkaClasspath(ctx.log);
  writeBrokerLog4j();
  await launchBroker(ctx, broker, classpath);
  await waitHealthy({
    service: `kafka broker ${id}`,
    processes: [processName(id)],
    timeoutMs: START_TIMEOUT_MS,
    // Back in the metadata is enough here: a rolling restart watches the ISR catch up itself.
    check: async () => {
      const { brokers } = await withTimeout(clusterView(ctx), healthTimeoutMs(ctx), 'kafka metadata');
      if (!brokers.includes(id)) throw new Error(`broker ${id} is not in the cluster metadata yet`);
    },
  });
}

/** SIGTERM makes the broker shut down in a controlled way (leadership moved off it first); SIGKILL only after the timeout. */
export async function stopBrokerProcess(ctx: StackContext, id: number): Promise<void> {
  brokerById(ctx, id);
  ctx.log(`kafka: stopping broker ${id}`);
  await stopProcess(processName(id), 'SIGTERM', STOP_TIMEOUT_MS);
}

export const kafka: StackService = {
  name: 'kafka',

  async install(ctx) {
    await kafkaClasspath(ctx.log);
  },

  async start(ctx) {
    const classpath = await kafkaClasspath(ctx.log);
    writeBrokerLog4j();
    await Promise.all(ctx.ports.kafka.map((broker) => launchBroker(ctx, broker, classpath)));
    await waitHealthy({
      service: 'kafka',
      processes: ctx.ports.kafka.map((b) => processName(b.id)),
      timeoutMs: START_TIMEOUT_MS,
      check: () => checkClusterSettled(ctx),
    });
  },

  async stop(ctx) {
    // One at a time, so each controlled shutdown is acknowledged by a quorum that still exists
    // (stopped all at once, the nodes whose controllers leave first strand the others).
    const running = ctx.ports.kafka.filter((b) => runningPid(processName(b.id)) !== undefined);
    for (const [index, broker] of running.entries()) {
      // A single-node cluster is its own quorum, so only a node outliving its peers needs the short grace.
      const last = index === running.length - 1 && ctx.ports.kafka.length > 1;
      ctx.log(`kafka: stopping broker ${broker.id}`);
      await stopProcess(processName(broker.id), 'SIGTERM', last ? LAST_NODE_GRACE_MS : STOP_TIMEOUT_MS);
    }
  },

  async status(ctx) {
    const pids = new Map(ctx.ports.kafka.map((b) => [b.id, runningPid(processName(b.id))]));
    let view: ClusterView = { brokers: [], underReplicated: [] };
    let leader: number | undefined;
    let problem: string | undefined;
    if ([...pids.values()].some((pid) => pid !== undefined)) {
      try {
        view = await withTimeout(clusterView(ctx), healthTimeoutMs(ctx), 'kafka metadata');
        leader = await quorumLeader(ctx);
        if (leader === undefined) problem = 'the metadata quorum has no leader';
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    const brokers: StatusLine[] = ctx.ports.kafka.map((b) => {
      const pid = pids.get(b.id);
      const line = { name: processName(b.id), port: b.port, ports: { controller: b.controllerPort } };
      if (pid === undefined) return { ...line, state: 'down' };
      if (!view.brokers.includes(b.id)) return { ...line, state: 'unhealthy', pid, detail: problem ?? 'not in the cluster metadata' };
      return { ...line, state: 'up', pid, detail: leader === b.id ? 'metadata quorum leader' : undefined };
    });
    const upCount = brokers.filter((b) => b.state === 'up').length;
    const anyRunning = brokers.some((b) => b.state !== 'down');
    const cluster: StatusLine = {
      name: 'kafka',
      state: !anyRunning ? 'down' : upCount === brokers.length && leader !== undefined ? 'up' : 'unhealthy',
      port: ctx.ports.kafka[0]?.port ?? 0,
      ports: {},
      detail: anyRunning
        ? [
            `${upCount}/${brokers.length} brokers up`,
            leader === undefined ? 'no quorum leader' : `quorum leader ${leader}`,
            `${view.underReplicated.length} under-replicated partition(s)`,
            ...(problem ? [problem] : []),
          ].join(', ')
        : undefined,
    };
    return [cluster, ...brokers];
  },
};
