import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Admin } from 'kafkajs';
import { createKafkaBrokerActivities } from '../../activities/kafka/roll/brokers';
import { parseQuorumLeader, replicationProblems, type KafkaClusterState } from '../../activities/kafka/roll/clusterState';
import { restartCommandFor } from '../../activities/kafka/roll/restart/brokerCommand';
import { createTopicsAndWait } from '../../activities/kafka/topics';
import { startBroker } from '../../localStack';
import { loadConfig, type Config } from '../../workers/config';
import { createConnections } from '../../workers/connections';

// Part 1 is pure (parsing, argv building). Part 2 runs against the real stack: three KRaft
// brokers (RF 3, min.insync.replicas 2). It stops one broker (never the quorum leader) and
// always leaves all three running with no under-replicated partition.

/** `kafka-metadata-quorum --bootstrap-server ... describe --status`, as Kafka 3.9 prints it. */
const QUORUM_STATUS = `ClusterId:              Hcb2Zw1ORSyZ5cV-7SN9Ag
LeaderId:               2
LeaderEpoch:            7
HighWatermark:          18817
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   0
CurrentVoters:          [{"id": 1, "directoryId": null, "endpoints": ["CONTROLLER://127.0.0.1:19192"]}, {"id": 2, "directoryId": null, "endpoints": ["CONTROLLER://127.0.0.1:19193"]}, {"id": 3, "directoryId": null, "endpoints": ["CONTROLLER://127.0.0.1:19194"]}]
CurrentObservers:       []
`;

function withField(config: Config, kafka: Partial<Config['kafka']>): Config {
  return { ...config, kafka: { ...config.kafka, ...kafka } };
}

function failureOf(err: unknown): ApplicationFailure {
  assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

describe('kafka broker activities: pure parts', () => {
  const base = loadConfig().config;

  it('parseQuorumLeader reads LeaderId, undefined for -1, and refuses output without it', () => {
    assert.equal(parseQuorumLeader(QUORUM_STATUS), 2);
    assert.equal(parseQuorumLeader(QUORUM_STATUS.replace('LeaderId:               2', 'LeaderId:               13')), 13);
    assert.equal(parseQuorumLeader(QUORUM_STATUS.replace('LeaderId:               2', 'LeaderId:               -1')), undefined);
    // "LeaderEpoch" must not be mistaken for the id.
    assert.equal(parseQuorumLeader('LeaderEpoch:  9\nLeaderId:  3\n'), 3);
    assert.throws(() => parseQuorumLeader('Error: Timed out waiting for a node assignment.'), /no "LeaderId:" line/);
  });

  it('replicationProblems finds URP and partitions the broker is missing from', () => {
    const p = (topic: string, replicas: number[], isr: number[]) => ({ topic, partition: 0, replicas, isr });
    const r = replicationProblems([p('a', [1, 2, 3], [1, 2, 3]), p('b', [1, 2, 3], [1, 3]), p('c', [1, 3], [1, 3]), p('d', [2, 3], [3])], 2);
    assert.deepEqual(r, { underReplicated: ['b-0', 'd-0'], brokerOutOfIsr: ['b-0', 'd-0'], brokerPartitions: 3 });
  });

  it('restartCommandFor substitutes {id}/{host} per element; a host with shell metacharacters stays one argument', () => {
    const evilHost = 'kafka-1.example; rm -rf / $(whoami) `id` | cat && echo "x"';
    const config = withField(base, {
      brokers: [
        { id: 1, host: evilHost, port: 9092 },
        { id: 2, host: 'kafka-2.example', port: 9092 },
      ],
      restart: { ...base.kafka.restart, backend: 'command', command: ['ssh', '{host}', 'sudo', 'systemctl', 'restart', 'kafka@{id}', '--id={id}/{id}'] },
    });
    assert.deepEqual(restartCommandFor(config, 1), {
      backend: 'command',
      stop: ['ssh', evilHost, 'sudo', 'systemctl', 'restart', 'kafka@1', '--id=1/1'],
    });
    assert.deepEqual(restartCommandFor(config, 2)?.stop, ['ssh', 'kafka-2.example', 'sudo', 'systemctl', 'restart', 'kafka@2', '--id=2/2']);
    assert.equal(restartCommandFor(config, 1)?.stop.length, 7);
  });

  it('restartCommandFor builds kubectl delete and wait (context, namespace, pod name, timeout)', () => {
    const config = withField(base, {
      restart: { backend: 'kubernetes', kubernetes: { kubectl: '/usr/bin/kubectl', namespace: 'data', podName: 'kafka-broker-{id}', context: 'prod-eu' } },
      roll: { ...base.kafka.roll, brokerBackTimeoutSeconds: 240 },
    });
    assert.deepEqual(restartCommandFor(config, 3), {
      backend: 'kubernetes',
      stop: ['/usr/bin/kubectl', '--context', 'prod-eu', '-n', 'data', 'delete', 'pod', 'kafka-broker-3'],
      start: ['/usr/bin/kubectl', '--context', 'prod-eu', '-n', 'data', 'wait', '--for=condition=Ready', 'pod/kafka-broker-3', '--timeout=240s'],
    });
    const noContext = withField(base, { restart: { backend: 'kubernetes', kubernetes: { kubectl: 'kubectl', namespace: 'kafka', podName: 'kafka-{id}' } } });
    assert.deepEqual(restartCommandFor(noContext, 1)?.stop, ['kubectl', '-n', 'kafka', 'delete', 'pod', 'kafka-1']);
  });

  it('restartCommandFor: undefined for local, InvalidInput for a broker that is not configured', () => {
    assert.equal(restartCommandFor(withField(base, { restart: { ...base.kafka.restart, backend: 'local' } }), 1), undefined);
    assert.throws(
      () => restartCommandFor(base, 42),
      (err: unknown) => failureOf(err).type === 'InvalidInput' && failureOf(err).nonRetryable && /42/.test(failureOf(err).message),
    );
  });
});

const logger = new DefaultLogger('WARN');
const env = () => new MockActivityEnvironment(undefined, { logger });
/** Runs an activity in a mock activity Context, keeping its result type. */
function inEnv<A extends unknown[], R>(e: MockActivityEnvironment, fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return e.run(fn, ...args) as Promise<R>;
}
function act<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return inEnv(env(), fn, ...args);
}

describe('kafka broker activities: command backend runs argv without a shell', () => {
  const loaded = loadConfig();
  const connections = createConnections(loaded.config, loaded.path);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ballast-kbrokers-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const evilHost = '127.0.0.1; touch PWNED $(touch PWNED2)';
  const commandConfig = (command: string[]) =>
    withField(loaded.config, {
      // Broker 1 keeps its real port, so the activity's metadata watch still talks to the cluster.
      brokers: loaded.config.kafka.brokers.map((b) => (b.id === 1 ? { ...b, host: evilHost } : b)),
      restart: { ...loaded.config.kafka.restart, backend: 'command', command },
      roll: { ...loaded.config.kafka.roll, brokerGoneTimeoutSeconds: 10, brokerBackTimeoutSeconds: 10 },
    });

  it('substituted arguments reach the program one by one; nothing is interpreted', async () => {
    const out = path.join(dir, 'argv.json');
    const script = 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.argv.slice(2)))';
    const acts = createKafkaBrokerActivities({ config: commandConfig([process.execPath, '-e', script, out, '{host}', 'kafka-{id}']), connections });
    const result = await act(acts.restartKafkaBroker, { brokerId: 1 });
    assert.equal(result.backend, 'command');
    assert.ok(result.durationMs >= 0);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), [evilHost, 'kafka-1']);
    assert.equal(existsSync(path.join(process.cwd(), 'PWNED')), false);
    assert.equal(existsSync(path.join(process.cwd(), 'PWNED2')), false);
    // The command backend's start half has nothing left to do.
    assert.deepEqual(await act(acts.startKafkaBroker, { brokerId: 1 }), { backend: 'command', action: 'none', durationMs: 0 });
  });

  it('a non-zero exit fails with the command stderr', async () => {
    const acts = createKafkaBrokerActivities({
      config: commandConfig([process.execPath, '-e', 'process.stderr.write("cannot reach " + process.argv[1]); process.exit(3)', '{host}']),
      connections,
    });
    await assert.rejects(act(acts.restartKafkaBroker, { brokerId: 1 }), (err: unknown) => {
      const f = failureOf(err);
      assert.equal(f.type, 'RestartCommandFailed');
      assert.match(f.message, /broker 1/);
      assert.match(f.message, /exited with 3/);
      assert.ok(f.message.includes(`cannot reach ${evilHost}`), f.message);
      return true;
    });
  });

  it('an unknown broker id fails with InvalidInput before anything runs', async () => {
    const marker = path.join(dir, 'ran');
    const acts = createKafkaBrokerActivities({
      config: commandConfig([process.execPath, '-e', 'require("fs").writeFileSync(process.argv[1], "x")', marker]),
      connections,
    });
    for (const brokerId of [99, -1, 1.5]) {
      await assert.rejects(act(acts.restartKafkaBroker, { brokerId }), (err: unknown) => {
        const f = failureOf(err);
        assert.equal(f.type, 'InvalidInput');
        assert.equal(f.nonRetryable, true);
        assert.match(f.message, new RegExp(`brokerId: ${brokerId}`));
        return true;
      });
    }
    assert.equal(existsSync(marker), false, 'the restart command must not have run');
  });
});

describe('kafka broker activities on the real stack', () => {
  const loaded = loadConfig();
  const connections = createConnections(loaded.config, loaded.path);
  const acts = createKafkaBrokerActivities({ config: loaded.config, connections });
  const ids = loaded.config.kafka.brokers.map((b) => b.id).sort((a, b) => a - b);
  const run = randomBytes(4).toString('hex');
  const PLAIN = `ballast-test-kbrokers-${run}`;
  const STRICT = `ballast-test-kbrokers-minisr3-${run}`;
  let admin: Admin;

  /** Healthy: every broker up and no URP (another test may be rolling a broker right now). */
  async function waitHealthy(timeoutMs = 600_000): Promise<KafkaClusterState> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      try {
        const state = await act(acts.kafkaClusterState);
        if (state.brokersOnline.length === ids.length && state.underReplicated === 0 && state.offline === 0) return state;
        last = `online ${state.brokersOnline.join(',')}, URP ${state.underReplicated}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`the cluster did not become healthy: ${last}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  before(async () => {
    admin = connections.kafka().admin();
    await admin.connect();
    await waitHealthy();
    await createTopicsAndWait(admin, [
      { topic: PLAIN, numPartitions: 3, replicationFactor: 3 },
      { topic: STRICT, numPartitions: 2, replicationFactor: 3, configEntries: [{ name: 'min.insync.replicas', value: '3' }] },
    ]);
  });

  after(async () => {
    try {
      await admin.deleteTopics({ topics: [PLAIN, STRICT] }).catch(() => undefined);
    } finally {
      await admin.disconnect();
    }
  });

  it('kafkaClusterState: 3 brokers, URP 0, a quorum leader, every topic with its effective min.insync.replicas', async () => {
    const listed = await admin.listTopics();
    const state = await act(acts.kafkaClusterState);
    assert.ok(state.clusterId.length > 0);
    assert.deepEqual(state.brokersConfigured, ids);
    assert.deepEqual(state.brokersOnline, ids);
    assert.equal(state.underReplicated, 0);
    assert.equal(state.offline, 0);
    assert.ok(state.quorumLeader !== undefined && ids.includes(state.quorumLeader), `quorum leader ${state.quorumLeader}`);

    const topics = new Set(state.partitions.map((p) => p.topic));
    const stillListed = new Set(await admin.listTopics());
    for (const t of listed.filter((t) => stillListed.has(t))) assert.ok(topics.has(t), `topic ${t} missing from the state`);
    if (topics.has('__consumer_offsets')) {
      const offsets = state.partitions.filter((p) => p.topic === '__consumer_offsets');
      assert.ok(offsets.every((p) => p.minIsr === 2 && p.replicas.length === 3));
    }

    const plain = state.partitions.filter((p) => p.topic === PLAIN);
    const strict = state.partitions.filter((p) => p.topic === STRICT);
    assert.deepEqual(plain.map((p) => p.partition), [0, 1, 2]);
    assert.deepEqual(strict.map((p) => p.partition), [0, 1]);
    for (const p of plain) {
      assert.equal(p.minIsr, 2, `${PLAIN}-${p.partition}: the broker default`);
      assert.deepEqual([...p.replicas].sort(), ids);
      assert.deepEqual([...p.isr].sort(), ids);
      assert.ok(ids.includes(p.leader));
    }
    for (const p of strict) assert.equal(p.minIsr, 3, `${STRICT}-${p.partition}: the topic override`);
  });

  it('describeQuorumLeader returns a voter: the DescribeQuorum request, Kafka\'s own tool and kafkaClusterState agree', async () => {
    const leader = await act(acts.describeQuorumLeader, { via: 'api' });
    assert.ok(ids.includes(leader), `leader ${leader}`);
    assert.equal(await act(acts.describeQuorumLeader, { via: 'tool' }), leader);
    assert.equal(await act(acts.describeQuorumLeader), leader);
    const state = await act(acts.kafkaClusterState);
    assert.equal(state.quorumLeader, leader);
  });

  it('stop a broker (not the quorum leader): gone, URP > 0, waitBrokerBack times out; start: back, replication restored', async () => {
    const before = await waitHealthy();
    const leader = before.quorumLeader;
    const target = ids.filter((id) => id !== leader).at(-1);
    assert.ok(target !== undefined);
    let stopped = false;
    try {
      const stop = await act(acts.stopKafkaBroker, { brokerId: target });
      stopped = true;
      assert.equal(stop.backend, 'local');
      assert.equal(stop.action, 'processStopped');

      const gone = await act(acts.waitBrokerGone, { brokerId: target, timeoutSeconds: 60 });
      assert.equal(gone.brokerId, target);

      const down = await act(acts.kafkaClusterState);
      assert.ok(!down.brokersOnline.includes(target), `broker ${target} still online: ${down.brokersOnline.join(',')}`);
      assert.equal(down.brokersOnline.length, ids.length - 1);
      assert.ok(down.underReplicated > 0, 'a stopped broker leaves under-replicated partitions');
      // Our RF 3 topic lost the stopped broker from every ISR.
      assert.ok(down.partitions.filter((p) => p.topic === PLAIN).every((p) => !p.isr.includes(target)));

      // A wait that cannot succeed: BrokerTimeout naming the broker, what and how long, after ~3 s.
      const heartbeats: unknown[] = [];
      const timing = env();
      timing.on('heartbeat', (d: unknown) => heartbeats.push(d));
      const waitStarted = Date.now();
      await assert.rejects(inEnv(timing, acts.waitBrokerBack, { brokerId: target, timeoutSeconds: 3 }), (err: unknown) => {
        const f = failureOf(err);
        assert.equal(f.type, 'BrokerTimeout');
        assert.equal(f.nonRetryable, true);
        assert.match(f.message, new RegExp(`^broker ${target}: `));
        assert.match(f.message, /come back into the cluster metadata/);
        assert.match(f.message, /3 s timeout/);
        assert.match(f.message, new RegExp(`last seen: broker ${target} not in the cluster metadata`));
        return true;
      });
      const waited = Date.now() - waitStarted;
      assert.ok(waited >= 2_900 && waited < 10_000, `timed out after ${waited} ms`);
      assert.ok(heartbeats.length >= 2, `${heartbeats.length} heartbeats`);

      const start = await act(acts.startKafkaBroker, { brokerId: target });
      assert.equal(start.action, 'processStarted');
      const back = await act(acts.waitBrokerBack, { brokerId: target, timeoutSeconds: 120 });
      assert.equal(back.brokerId, target);
      const restored = await act(acts.waitReplicationRestored, { brokerId: target, timeoutSeconds: 300 });
      stopped = false;
      assert.ok(restored.brokerPartitions >= 5, `${restored.brokerPartitions} partitions on broker ${target}`);
      assert.ok(restored.durationMs >= 0);

      const after = await act(acts.kafkaClusterState);
      assert.deepEqual(after.brokersOnline, ids);
      assert.equal(after.underReplicated, 0, 'restored means restored on the next read too');
      assert.ok(after.partitions.filter((p) => p.replicas.includes(target)).every((p) => p.isr.includes(target)));
    } finally {
      if (stopped) await startBroker(target, { config: loaded }).catch(() => undefined);
      await waitHealthy();
    }
  });

  it('electPreferredLeaders moves leadership back to the preferred replicas', async () => {
    await waitHealthy();
    const result = await act(acts.electPreferredLeaders);
    // The broker restarted above led nothing when it came back; it is the preferred leader of one of our partitions.
    assert.ok(result.elected >= 1, `elected ${result.elected}`);
    // Every broker's metadata cache learns the new leaders shortly after the controller decided.
    let notPreferred: string[] = [];
    for (let i = 0; i < 15; i++) {
      const state = await act(acts.kafkaClusterState);
      const ours = state.partitions.filter((p) => p.topic === PLAIN || p.topic === STRICT);
      assert.equal(ours.length, 5);
      notPreferred = ours.filter((p) => p.leader !== p.replicas[0]).map((p) => `${p.topic}-${p.partition}: leader ${p.leader}, replicas ${p.replicas.join(',')}`);
      if (!notPreferred.length) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.deepEqual(notPreferred, [], `election ${JSON.stringify(result)}`);
    // Run again: nothing left to elect is still a success.
    const again = await act(acts.electPreferredLeaders);
    assert.equal(again.elected, 0);
  });

  it('restartKafkaBroker with an unknown broker id fails before touching the cluster', async () => {
    const started = Date.now();
    await assert.rejects(act(acts.restartKafkaBroker, { brokerId: 7 }), (err: unknown) => {
      const f = failureOf(err);
      assert.equal(f.type, 'InvalidInput');
      assert.match(f.message, /brokerId: 7 is not a configured Kafka broker \(configured: 1, 2, 3\)/);
      return true;
    });
    assert.ok(Date.now() - started < 1_000);
    const state = await act(acts.kafkaClusterState);
    assert.deepEqual(state.brokersOnline, ids);
    await assert.rejects(act(acts.waitBrokerGone, { brokerId: 7, timeoutSeconds: 1 }), (err: unknown) => failureOf(err).type === 'InvalidInput');
  });
});
