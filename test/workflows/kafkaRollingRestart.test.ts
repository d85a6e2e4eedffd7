import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { createApprovalActivities } from '../../activities/approval/approvals';
import type { ActivityDeps } from '../../activities/deps';
import type { Config } from '../../contracts/config';
import { approveUpdate } from '../../workflows/approval';
import type { PartitionState } from '../../contracts/brokerSafety';
import { rollStatusQuery, type KafkaRollingRestartInput } from '../../workflows/kafkaRollingRestart';
import { abortSignal, pauseSignal, resumeSignal } from '../../workflows/runControls';
import type { RollReport, RollSettings } from '../../contracts/rollTypes';
import { createApprovers, type Approvers } from '../../localStack/approvers';
import { eventually } from '../helpers/stackWorker';
import { createTestEnvironment, workflowBundle } from '../helpers/workflowEnv';

// Fake activities stand in for the cluster: the point is the workflow's order, safety waits,
// halts, approvals and operator controls. The approval activities are the real ones (ssh-keygen
// and Temporal's start identity). The integration test rolls the real three-node cluster.

// bob is the listed approver; alice starts the runs.
let approvers: Approvers;

interface Cluster {
  online: Set<number>;
  quorumLeader: number;
  partitions: PartitionState[];
  events: string[];
  /** Broker ids that never come back after a restart. */
  broken: Set<number>;
  /** The partitions every read after the pre-flight sees (the cluster degrading mid-roll). */
  afterPreflight?: PartitionState[];
  reads: number;
  /** Restarts that wait until released (pause/abort tests). */
  holds: Map<number, Promise<void>>;
  canaryStopped: boolean;
  notifications: string[];
}

const settings: RollSettings = {
  brokers: [1, 2, 3],
  backend: 'local',
  approval: { unsignedAllowed: false, approvers: ['bob'], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 },
  safetyTimeoutSeconds: 2,
  safetyBackoffSeconds: 0.2,
  safetyBackoffMaxSeconds: 0.5,
  brokerGoneTimeoutSeconds: 5,
  brokerBackTimeoutSeconds: 5,
  replicationTimeoutSeconds: 5,
  preferredLeaderElection: true,
  approvalPerBroker: false,
  canaryTopic: 'canary',
  canaryIntervalMs: 20,
};

const healthyPartitions = (): PartitionState[] => [
  { topic: 'orders', partition: 0, replicas: [1, 2, 3], isr: [1, 2, 3], minIsr: 2 },
  { topic: 'orders', partition: 1, replicas: [2, 3, 1], isr: [2, 3, 1], minIsr: 2 },
];
const withLeaders = (partitions: PartitionState[]) => partitions.map((p) => ({ ...p, leader: p.isr[0] ?? -1 }));

function fakes(cluster: Cluster): Partial<Activities> {
  const brokerCall = (name: string) => async ({ brokerId }: { brokerId: number }) => {
    cluster.events.push(`${name} ${brokerId}`);
  };
  return {
    kafkaRollSettings: async () => settings,
    kafkaClusterState: async () => {
      const partitions = cluster.reads++ > 0 && cluster.afterPreflight ? cluster.afterPreflight : cluster.partitions;
      return {
        clusterId: 'fake',
        brokersOnline: [...cluster.online].sort(),
        brokersConfigured: [1, 2, 3],
        partitions: withLeaders(partitions),
        underReplicated: partitions.filter((p) => p.isr.length < p.replicas.length).length,
        offline: 0,
        quorumLeader: cluster.quorumLeader,
      };
    },
    stopKafkaBroker: (async ({ brokerId }: { brokerId: number }) => {
      cluster.events.push(`restart ${brokerId}`);
      await cluster.holds.get(brokerId);
      cluster.online.delete(brokerId);
      return { backend: 'local', action: 'processStopped', durationMs: 1, goneObserved: true };
    }) as never,
    startKafkaBroker: (async ({ brokerId }: { brokerId: number }) => {
      if (cluster.broken.has(brokerId)) throw new Error(`broker ${brokerId} exited while starting`);
      cluster.online.add(brokerId);
      return { backend: 'local', action: 'processStarted', durationMs: 1 };
    }) as never,
    waitBrokerBack: (async ({ brokerId }: { brokerId: number }) => {
      if (!cluster.online.has(brokerId)) throw new Error(`broker ${brokerId} not back after 5 s`);
      cluster.events.push(`back ${brokerId}`);
    }) as never,
    waitReplicationRestored: brokerCall('in sync') as never,
    electPreferredLeaders: (async () => {
      cluster.events.push('elect');
      return { durationMs: 1 };
    }) as never,
    runKafkaCanary: (async () => {
      while (!cluster.canaryStopped) await new Promise((r) => setTimeout(r, 20));
      return { canaryId: 'c', topic: 'canary', sent: 100, acknowledged: 100, produceErrors: 0, retries: 2, maxLatencyMs: 40, p99LatencyMs: 30, consumed: 100, ackedMissing: 0, missingSample: [], duplicates: 0, startedAt: '', stoppedAt: '' };
    }) as never,
    stopKafkaCanary: (async () => {
      cluster.canaryStopped = true;
    }) as never,
    writeRollReport: (async (r: RollReport) => r.reportKey) as never,
    acquireRollLease: (async () => void cluster.events.push('lease')) as never,
    releaseRollLease: (async () => void cluster.events.push('release')) as never,
    notify: (async (n: { title: string }) => {
      cluster.notifications.push(n.title);
      return { delivered: 'log' };
    }) as never,
    ...createApprovalActivities({ config: { environment: 'production', approvals: { allowedSignersFile: approvers.allowedSignersFile } } as Config, connections: {} } as ActivityDeps),
  };
}

const newCluster = (overrides: Partial<Cluster> = {}): Cluster => ({
  online: new Set([1, 2, 3]),
  quorumLeader: 1,
  partitions: healthyPartitions(),
  events: [],
  broken: new Set(),
  canaryStopped: false,
  notifications: [],
  holds: new Map(),
  reads: 0,
  ...overrides,
});

describe('kafkaRollingRestart workflow (fake activities)', () => {
  let env: TestWorkflowEnvironment;
  let alice: Client;
  before(async () => {
    env = await createTestEnvironment();
    approvers = await createApprovers(['alice', 'bob']);
    alice = new Client({ connection: env.connection, identity: 'alice' });
  });
  after(async () => {
    await env?.teardown();
  });

  async function withWorker<T>(cluster: Cluster, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = `test-${randomUUID()}`;
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: fakes(cluster) });
    return worker.runUntil(fn(taskQueue));
  }
  const start = (taskQueue: string, input: KafkaRollingRestartInput = {}) =>
    alice.workflow.start('kafkaRollingRestart', { taskQueue, workflowId: `roll-${randomUUID()}`, args: [input] });
  const restarts = (cluster: Cluster) => cluster.events.filter((e) => e.startsWith('restart'));
  /** Waits until the roll asks for approval of `brokerId`; returns what bob signs. */
  const approvalAsked = async (handle: WorkflowHandle, brokerId: number) => {
    const status = await eventually(`the approval ask for broker ${brokerId}`, async () => {
      const s = await handle.query(rollStatusQuery);
      return s.phase === 'awaiting approval' && s.broker === brokerId && s.approval ? s : undefined;
    }, 10_000, 20);
    return { workflowId: handle.workflowId, runId: (await handle.describe()).runId, planHash: status.approval!.plan.hash, status };
  };
  const approve = async (handle: WorkflowHandle, brokerId: number) => {
    const asked = await approvalAsked(handle, brokerId);
    const answer = await approvers.signAnswer('bob', { ...asked, reason: `broker ${brokerId}` });
    assert.equal(await handle.executeUpdate(approveUpdate, { args: [answer] }), 'approved by bob');
    return { ...asked, answer };
  };

  it('restarts every broker once, the quorum leader last, each back and in sync before the next', async () => {
    const cluster = newCluster({ quorumLeader: 2 });
    const report = (await withWorker(cluster, async (tq) => (await start(tq)).result())) as RollReport;
    assert.equal(report.outcome, 'completed');
    assert.deepEqual(report.order, [1, 3, 2]);
    assert.deepEqual(
      cluster.events.filter((e) => !e.startsWith('elect')),
      ['lease', 'restart 1', 'back 1', 'in sync 1', 'restart 3', 'back 3', 'in sync 3', 'restart 2', 'back 2', 'in sync 2', 'release'],
      'the cluster is leased for the whole roll',
    );
    assert.equal(report.restarted.find((s) => s.brokerId === 2)?.wasQuorumLeader, true);
    assert.equal(report.canary?.ackedMissing, 0);
    assert.equal(cluster.canaryStopped, true);
  });

  it('halts at a broker that does not come back, touching no other, and notifies', async () => {
    const cluster = newCluster({ broken: new Set([3]), quorumLeader: 1 });
    await withWorker(cluster, async (tq) => {
      await assert.rejects((await start(tq)).result(), (err) => {
        assert.ok(err instanceof WorkflowFailedError);
        const cause = err.cause as ApplicationFailure;
        assert.equal(cause.type, 'RollHalted');
        assert.match(cause.message, /broker 3 did not come back: waited for it to start and rejoin the cluster for \d+ s: .*broker 3 exited while starting/);
        assert.match(cause.message, /brokers not touched: 1/);
        const report = cause.details?.[0] as RollReport;
        assert.equal(report.haltedBroker, 3);
        assert.deepEqual(report.untouched, [1]);
        return true;
      });
    });
    assert.deepEqual(cluster.events.filter((e) => e.startsWith('restart')), ['restart 2', 'restart 3']);
    assert.ok(cluster.notifications.some((n) => /halted at broker 3/.test(n)));
    assert.equal(cluster.canaryStopped, true, 'the canary is stopped on a halt too');
  });

  it('waits while a broker is unsafe, then stops with a report naming the partitions', async () => {
    const cluster = newCluster({ afterPreflight: [{ topic: 'strict', partition: 0, replicas: [1, 2, 3], isr: [1, 2], minIsr: 2 }], quorumLeader: 3 });
    await withWorker(cluster, async (tq) => {
      await assert.rejects((await start(tq, { brokers: [1] })).result(), (err) => {
        const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
        assert.match(cause.message, /broker 1 was not safe to restart for \d+ s \(limit 2 s\).*strict-0 \(ISR 2 equals min\.insync\.replicas 2 and broker 1 is in it\)/);
        assert.deepEqual((cause.details?.[0] as RollReport).untouched, [1], 'the unsafe broker was never touched');
        return true;
      });
    });
    assert.deepEqual(cluster.events.filter((e) => e.startsWith('restart')), [], 'no broker restarted');
  });

  it('reports never-safe partitions without blocking on them', async () => {
    const cluster = newCluster({ partitions: [{ topic: 'rf1', partition: 0, replicas: [1], isr: [1], minIsr: 1 }] });
    const report = (await withWorker(cluster, async (tq) => (await start(tq, { brokers: [1], canary: false })).result())) as RollReport;
    assert.equal(report.outcome, 'completed');
    assert.deepEqual(report.neverSafe.map((c) => `${c.topic}-${c.partition}`), ['rf1-0']);
  });

  it('pauses before the next broker, resumes, and an abort stops before the next broker, never mid-restart', async () => {
    const releases = new Map<number, () => void>();
    const cluster = newCluster({ quorumLeader: 3 });
    for (const id of [1, 2]) cluster.holds.set(id, new Promise<void>((r) => releases.set(id, r)));
    await withWorker(cluster, async (tq) => {
      const handle = await start(tq);
      await eventually('the first restart', async () => (cluster.events.includes('restart 1') ? true : undefined), 10_000, 20);
      await handle.signal(pauseSignal, { by: 'alice' });
      releases.get(1)!();
      await eventually('the pause', async () => ((await handle.query(rollStatusQuery)).phase === 'paused' ? true : undefined), 10_000, 50);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(cluster.events.filter((e) => e.startsWith('restart')), ['restart 1'], 'paused before broker 2');
      await handle.signal(resumeSignal, { by: 'alice' });
      await eventually('the second restart', async () => (cluster.events.includes('restart 2') ? true : undefined), 10_000, 20);
      // Abort while broker 2 is being restarted: it is finished, then the roll stops.
      await handle.signal(abortSignal, { by: 'alice', reason: 'change window over' });
      releases.get(2)!();
      const report = (await handle.result()) as RollReport;
      assert.equal(report.outcome, 'aborted');
      assert.equal(report.abortedBy, 'alice: change window over');
      assert.deepEqual(report.restarted.map((r) => r.brokerId), [1, 2]);
      assert.deepEqual(report.untouched, [3]);
    });
    assert.ok(!cluster.events.includes('restart 3'));
    assert.ok(cluster.events.includes('in sync 2'), 'the broker in hand was finished, not cut off');
  });

  it('approvalPerBroker: asks before each of three brokers, and one broker\'s approval does not restart the next', async () => {
    const cluster = newCluster({ quorumLeader: 3 });
    const { report, hashes } = await withWorker(cluster, async (tq) => {
      const handle = await start(tq, { approvalPerBroker: true, canary: false });
      const hashes: string[] = [];
      const first = await approve(handle, 1);
      hashes.push(first.planHash);
      const second = await approvalAsked(handle, 2);
      assert.deepEqual(restarts(cluster), ['restart 1'], 'broker 2 waits for its own approval');
      const refusal = (pattern: RegExp) => (err: unknown) => pattern.test(String((err as { cause?: Error }).cause?.message));
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [first.answer] }), refusal(/is for plan .*, but the run waits on plan/));
      await assert.rejects(handle.executeUpdate(approveUpdate, { args: [{ ...first.answer, plan: second.planHash }] }), refusal(/does not match this text/));
      hashes.push((await approve(handle, 2)).planHash);
      await approvalAsked(handle, 3);
      assert.deepEqual(restarts(cluster), ['restart 1', 'restart 2'], 'broker 3 waits for its own approval');
      hashes.push((await approve(handle, 3)).planHash);
      return { report: (await handle.result()) as RollReport, hashes };
    });
    assert.equal(report.outcome, 'completed');
    assert.deepEqual(report.order, [1, 2, 3]);
    assert.equal(new Set(hashes).size, 3, 'each broker has its own plan');
    assert.deepEqual(report.restarted.map((s) => [s.approval?.outcome, s.approval?.by, s.approval?.planHash, s.approval?.keyFingerprint]), hashes.map((h) => ['approved', 'bob', h, report.restarted[0]!.approval!.keyFingerprint]));
    assert.match(report.restarted[0]!.approval!.keyFingerprint ?? '', /^SHA256:/);
  });

  it('an abort sent while broker 2 waits for approval leaves brokers 2 and 3 untouched', async () => {
    const cluster = newCluster({ quorumLeader: 3 });
    const report = await withWorker(cluster, async (tq) => {
      const handle = await start(tq, { approvalPerBroker: true, canary: false });
      await approve(handle, 1);
      await approvalAsked(handle, 2);
      await handle.signal(abortSignal, { by: 'carol', reason: 'incident elsewhere' });
      return (await handle.result()) as RollReport;
    });
    assert.equal(report.outcome, 'aborted');
    assert.equal(report.abortedBy, 'carol: incident elsewhere');
    assert.deepEqual(report.restarted.map((s) => s.brokerId), [1]);
    assert.deepEqual(report.untouched, [2, 3]);
    assert.deepEqual(restarts(cluster), ['restart 1']);
  });

  it('a pause sent during the approval wait holds the approved broker until resume', async () => {
    const cluster = newCluster({ quorumLeader: 3 });
    await withWorker(cluster, async (tq) => {
      const handle = await start(tq, { brokers: [1], approvalPerBroker: true, canary: false });
      await approvalAsked(handle, 1);
      await handle.signal(pauseSignal, { by: 'alice' });
      await approve(handle, 1);
      await eventually('the pause', async () => ((await handle.query(rollStatusQuery)).phase === 'paused' ? true : undefined), 10_000, 20);
      assert.deepEqual(restarts(cluster), [], 'approved, but paused: not restarted');
      await handle.signal(resumeSignal, { by: 'alice' });
      assert.equal(((await handle.result()) as RollReport).outcome, 'completed');
    });
    assert.deepEqual(restarts(cluster), ['restart 1']);
  });

  it('re-reads the cluster right before the stop: a broker that became unsafe during the approval wait is not restarted', async () => {
    const cluster = newCluster({ quorumLeader: 3 });
    await withWorker(cluster, async (tq) => {
      const handle = await start(tq, { brokers: [1], approvalPerBroker: true, canary: false });
      await approvalAsked(handle, 1);
      cluster.afterPreflight = [{ topic: 'strict', partition: 0, replicas: [1, 2, 3], isr: [1, 2], minIsr: 2 }];
      await approve(handle, 1);
      await assert.rejects(handle.result(), (err) => {
        const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
        assert.equal(cause.type, 'RollHalted');
        assert.match(cause.message, /broker 1 was not safe to restart .*strict-0/);
        assert.deepEqual((cause.details?.[0] as RollReport).untouched, [1]);
        return true;
      });
    });
    assert.deepEqual(restarts(cluster), [], 'the stale approval did not restart an unsafe broker');
  });

  it('an abort during the safety wait ends it at once, the broker untouched', async () => {
    const cluster = newCluster({ quorumLeader: 3, afterPreflight: [{ topic: 'strict', partition: 0, replicas: [1, 2, 3], isr: [1, 2], minIsr: 2 }] });
    const report = await withWorker(cluster, async (tq) => {
      const handle = await start(tq, { brokers: [1], canary: false });
      await eventually('the safety wait', async () => ((await handle.query(rollStatusQuery)).phase === 'checking safety' ? true : undefined), 10_000, 20);
      await handle.signal(abortSignal, { by: 'alice' });
      return (await handle.result()) as RollReport;
    });
    assert.equal(report.outcome, 'aborted', 'aborted, not halted by the safety timeout');
    assert.deepEqual(report.untouched, [1]);
    assert.deepEqual(restarts(cluster), []);
  });

  it('refuses an unknown broker and a pre-flight with a broker offline, before touching anything', async () => {
    const cluster = newCluster({ online: new Set([1, 2]) });
    await withWorker(cluster, async (tq) => {
      await assert.rejects((await start(tq, { brokers: [7] })).result(), (err) => {
        assert.match(String((err as WorkflowFailedError).cause?.message), /input\.brokers: not configured: 7/);
        return true;
      });
      await assert.rejects((await start(tq)).result(), (err) => {
        assert.match(String((err as WorkflowFailedError).cause?.message), /pre-flight failed, no broker was touched: broker\(s\) offline: 3/);
        return true;
      });
    });
    assert.deepEqual(cluster.events, []);
  });
});
