import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createKafkaBrokerActivities } from '../../activities/kafka/roll/brokers';
import type { KafkaClusterState } from '../../activities/kafka/roll/clusterState';
import { startBroker, stopBroker } from '../../localStack';
import { runningPid } from '../../localStack/processes';
import { approveUpdate } from '../../workflows/approval';
import { createConnections, type Connections } from '../../workers/connections';
import type { LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { restartSafety } from '../../contracts/brokerSafety';
import { rollStatusQuery, type kafkaRollingRestart } from '../../workflows/kafkaRollingRestart';
import { abortSignal, pauseSignal, resumeSignal } from '../../workflows/runControls';
import type { RollReport } from '../../contracts/rollTypes';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { eventually } from '../helpers/stackWorker';
import { spawnWorker, writeTestConfig, type WorkerProcess } from '../helpers/workerProcess';

const repoRoot = path.resolve(__dirname, '../..');

describe('kafkaRollingRestart on the real three-node cluster', () => {
  let loaded: LoadedConfig;
  let connections: Connections;
  let client: Client;
  let connection: Connection;
  let worker: WorkerProcess | undefined;
  // alice starts the rolls; bob approves each broker with his SSH key.
  let approvers: Approvers;
  /** Each broker's process id: a broker that was restarted has a new one. */
  const brokerPids = () => Object.fromEntries([1, 2, 3].map((id) => [id, runningPid(`kafka-${id}`)]));

  const onlineBrokers = async (): Promise<number[]> => {
    const admin = connections.kafka(5_000).admin();
    await admin.connect();
    try {
      return (await admin.describeCluster()).brokers.map((b) => b.nodeId).sort();
    } finally {
      await admin.disconnect();
    }
  };
  const underReplicated = async (): Promise<number> => {
    const admin = connections.kafka().admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata();
      return topics.flatMap((t) => t.partitions).filter((p) => p.isr.length < p.replicas.length).length;
    } finally {
      await admin.disconnect();
    }
  };
  const settled = () =>
    eventually('all three brokers in sync', async () => ((await onlineBrokers()).length === 3 && (await underReplicated()) === 0 ? true : undefined), 180_000, 500);
  const roll = (input: Parameters<typeof kafkaRollingRestart>[0]) =>
    client.workflow.execute<typeof kafkaRollingRestart>('kafkaRollingRestart', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-roll-${randomUUID()}`,
      args: [input],
    });

  before(async () => {
    approvers = await createApprovers(['alice', 'bob']);
    loaded = writeTestConfig({ approvals: { allowedSignersFile: approvers.allowedSignersFile, approvers: ['bob'], fourEyes: true } });
    connections = createConnections(loaded.config, loaded.path);
    connection = await Connection.connect(temporalConnectionOptions(loaded.config, loaded.path));
    client = new Client({ connection, namespace: loaded.config.temporal.namespace, identity: 'alice' });
    await settled();
    worker = await spawnWorker(loaded.path);
  });

  after(async () => {
    await worker?.stop();
    await connection?.close();
  });

  it('restarts every broker exactly once, the controller last, never two down at once, losing no acknowledged message', async () => {
    // A watcher samples the cluster all along: how many brokers are out of the metadata at once.
    let watching = true;
    let worstDown = 0;
    let samples = 0;
    const watcher = (async () => {
      while (watching) {
        const online = await onlineBrokers().catch(() => undefined);
        if (online) {
          samples++;
          worstDown = Math.max(worstDown, 3 - online.length);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let report: RollReport;
    try {
      report = await roll({});
    } finally {
      watching = false;
      await watcher;
    }
    assert.equal(report.outcome, 'completed');
    assert.deepEqual([...report.order].sort(), [1, 2, 3], 'every broker exactly once');
    assert.equal(report.restarted.length, 3);
    assert.equal(report.restarted.at(-1)!.wasQuorumLeader, true, 'the active controller went last');
    assert.ok(report.restarted.slice(0, 2).every((s) => !s.wasQuorumLeader));
    assert.ok(samples > 20, `the watcher sampled ${samples} times`);
    assert.equal(worstDown, 1, 'one broker down at a time, and each was seen down');
    assert.ok(report.canary, 'the canary ran');
    assert.ok(report.canary!.acknowledged > 100, `${report.canary!.acknowledged} acknowledged`);
    assert.equal(report.canary!.ackedMissing, 0, 'no acknowledged message lost');
    assert.equal(report.finalUnderReplicated, 0);
    assert.equal(await underReplicated(), 0);
  });

  it('pauses before a broker, resumes, and an abort stops before the next broker with the cluster whole', async () => {
    const handle = await client.workflow.start<typeof kafkaRollingRestart>('kafkaRollingRestart', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-roll-control-${randomUUID()}`,
      args: [{ canary: false, preferredLeaderElection: false }],
    });
    await handle.signal(pauseSignal, { by: 'alice', reason: 'wait for the change window' });
    await eventually('the pause', async () => ((await handle.query(rollStatusQuery)).phase === 'paused' ? true : undefined), 60_000, 200);
    await new Promise((r) => setTimeout(r, 2_000));
    const paused = await handle.query(rollStatusQuery);
    assert.equal(paused.phase, 'paused');
    assert.deepEqual(paused.done, [], 'no broker restarted while paused');
    assert.deepEqual(await onlineBrokers(), [1, 2, 3]);
    await handle.signal(resumeSignal, { by: 'alice' });
    await eventually('the first broker done', async () => ((await handle.query(rollStatusQuery)).done.length >= 1 ? true : undefined), 180_000, 200);
    await handle.signal(abortSignal, { by: 'alice', reason: 'enough for today' });
    const report = await handle.result();
    assert.equal(report.outcome, 'aborted');
    assert.equal(report.abortedBy, 'alice: enough for today');
    assert.ok(report.restarted.length >= 1 && report.restarted.length < 3, `restarted ${report.order.join(', ')}`);
    assert.equal(report.restarted.length + report.untouched.length, 3, 'every broker either restarted whole or untouched');
    assert.deepEqual(await onlineBrokers(), [1, 2, 3]);
    assert.equal(report.finalUnderReplicated, 0, 'the broker in hand was finished, not cut off');
  });

  /** Starts a roll that asks before each broker, and a way to answer its next ask as bob. */
  const approvalRoll = async () => {
    const handle = await client.workflow.start<typeof kafkaRollingRestart>('kafkaRollingRestart', {
      taskQueue: loaded.config.temporal.taskQueue,
      workflowId: `test-roll-approval-${randomUUID()}`,
      args: [{ approvalPerBroker: true, canary: false, preferredLeaderElection: false }],
    });
    const asked: number[] = [];
    const nextAsk = async () => {
      const status = await eventually(`approval ask ${asked.length + 1}`, async () => {
        const s = await handle.query(rollStatusQuery);
        return s.phase === 'awaiting approval' && s.approval && !asked.includes(s.broker!) ? s : undefined;
      }, 180_000, 200);
      asked.push(status.broker!);
      return { brokerId: status.broker!, planHash: status.approval!.plan.hash };
    };
    const approve = async (planHash: string, reason: string) =>
      handle.executeUpdate(approveUpdate, { args: [await approvers.signAnswer('bob', { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, planHash, reason })] });
    return { handle, nextAsk, approve };
  };

  it('approvalPerBroker: three signed approvals, and the roll waits before each broker until its own', async () => {
    const pidsBefore = brokerPids();
    const { handle, nextAsk, approve } = await approvalRoll();
    const approved: number[] = [];
    for (let i = 0; i < 3; i++) {
      const ask = await nextAsk();
      // The broker asked about still runs as before; only the brokers approved so far restarted.
      const pids = brokerPids();
      assert.equal(pids[ask.brokerId], pidsBefore[ask.brokerId], `broker ${ask.brokerId} untouched before its approval`);
      for (const id of approved) assert.notEqual(pids[id], pidsBefore[id], `broker ${id} restarted after its approval`);
      assert.equal(await approve(ask.planHash, `roll, broker ${ask.brokerId}`), 'approved by bob');
      approved.push(ask.brokerId);
    }
    const report = await handle.result();
    assert.equal(report.outcome, 'completed');
    assert.deepEqual(report.order, approved);
    assert.deepEqual(report.restarted.map((s) => s.approval?.by), ['bob', 'bob', 'bob']);
    assert.equal(new Set(report.restarted.map((s) => s.approval?.planHash)).size, 3, 'one plan per broker');
    const pidsAfter = brokerPids();
    for (const id of [1, 2, 3]) assert.notEqual(pidsAfter[id], pidsBefore[id], `broker ${id} was restarted`);
    assert.deepEqual(await onlineBrokers(), [1, 2, 3]);
    await settled();
  });

  it('an abort sent while the second broker waits for approval leaves it and the third untouched', async () => {
    const pidsBefore = brokerPids();
    const { handle, nextAsk, approve } = await approvalRoll();
    const first = await nextAsk();
    await approve(first.planHash, 'first broker');
    const second = await nextAsk();
    await handle.signal(abortSignal, { by: 'carol', reason: 'incident elsewhere' });
    const report = await handle.result();
    assert.equal(report.outcome, 'aborted');
    assert.deepEqual(report.order, [first.brokerId]);
    assert.ok(report.untouched.includes(second.brokerId) && report.untouched.length === 2, `untouched: ${report.untouched.join(', ')}`);
    const pidsAfter = brokerPids();
    assert.notEqual(pidsAfter[first.brokerId], pidsBefore[first.brokerId], 'the approved broker was restarted');
    for (const id of report.untouched) assert.equal(pidsAfter[id], pidsBefore[id], `broker ${id} untouched`);
    await settled();
  });

  it('one roll per cluster: a second roll is refused while the first holds the cluster, touching no broker', async (t) => {
    const pidsBefore = brokerPids();
    const { handle, nextAsk } = await approvalRoll();
    await nextAsk();
    // However the assertions end, the first roll must not keep the cluster for the next test.
    t.after(() => handle.signal(abortSignal, { by: 'test', reason: 'cleanup' }).catch(() => undefined));
    await assert.rejects(roll({ canary: false }), (err) => {
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause as ApplicationFailure;
      assert.equal(cause.type, 'TargetBusy');
      assert.match(cause.message, new RegExp(`roll ${handle.workflowId} is already restarting cluster`));
      return true;
    });
    await handle.signal(abortSignal, { by: 'test', reason: 'lease test' });
    assert.equal((await handle.result()).outcome, 'aborted');
    assert.deepEqual(brokerPids(), pidsBefore, 'no broker was restarted');
  });

  it('halts after a broker that cannot start, touching none of the others, and names it', async () => {
    const before_ = (await new MockActivityEnvironment().run(createKafkaBrokerActivities({ config: loaded.config, connections }).kafkaClusterState)) as KafkaClusterState;
    const victim = [1, 2, 3].find((id) => id !== before_.quorumLeader)!;
    const meta = path.join(repoRoot, '.stack', 'kafka', `node-${victim}`, 'data', 'meta.properties');
    const original = readFileSync(meta, 'utf8');
    // A wrong cluster id: the broker refuses to start, as after a botched config change.
    writeFileSync(meta, original.replace(/cluster\.id=.*/, 'cluster.id=AAAAAAAAAAAAAAAAAAAAAA'));
    try {
      await assert.rejects(roll({ brokers: [victim, ...[1, 2, 3].filter((id) => id !== victim)], canary: false }), (err) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = err.cause as ApplicationFailure;
        assert.equal(cause.type, 'RollHalted');
        const report = cause.details?.[0] as RollReport;
        assert.equal(report.haltedBroker, victim);
        assert.match(report.haltedReason ?? '', new RegExp(`broker ${victim} did not come back: waited for it to start and rejoin the cluster for \\d+ s`));
        assert.equal(report.restarted.length, 0);
        assert.deepEqual([...report.untouched].sort(), [1, 2, 3].filter((id) => id !== victim));
        return true;
      });
      const online = await onlineBrokers();
      assert.deepEqual(online, [1, 2, 3].filter((id) => id !== victim), 'the other brokers were not touched');
    } finally {
      writeFileSync(meta, original);
      await startBroker(victim).catch(() => undefined);
      await settled();
    }
  });

  it('refuses while a broker is down: pre-flight names it, and the safety check names the strict topic', async () => {
    const topic = `ballast-test-strict-${randomUUID().slice(0, 8)}`;
    const admin = connections.kafka().admin();
    await admin.connect();
    await stopBroker(3);
    try {
      // Created while broker 3 is down: replication factor 3, min.insync.replicas 3.
      // kafkajs' own wait for leaders fails on KRaft while the topic reaches every broker; the
      // cluster-state wait below is the wait.
      await admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [1, 2, 3] }], configEntries: [{ name: 'min.insync.replicas', value: '3' }] }],
      });
      await assert.rejects(roll({ brokers: [1], canary: false }), (err) => {
        assert.match(String((err as WorkflowFailedError).cause?.message), /pre-flight failed, no broker was touched: broker\(s\) offline: 3/);
        return true;
      });
      const state = await eventually(
        'the strict topic in the metadata',
        async () => {
          const s = (await new MockActivityEnvironment().run(createKafkaBrokerActivities({ config: loaded.config, connections }).kafkaClusterState)) as KafkaClusterState;
          return s.partitions.some((p) => p.topic === topic) ? s : undefined;
        },
        30_000,
      );
      const verdict = restartSafety(1, state.partitions);
      assert.equal(verdict.safe, false);
      const strict = verdict.blocking.find((c) => c.topic === topic);
      assert.ok(strict, 'the strict topic blocks the restart of broker 1');
      assert.equal(strict.minIsr, 3);
      assert.match(strict.why, /ISR 2 is already below min\.insync\.replicas 3/);
    } finally {
      await startBroker(3);
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
      await settled();
    }
  });
});
