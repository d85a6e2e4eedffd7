import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import { createApprovalGate } from './approval';
import { nextBroker, restartSafety, type PartitionConcern } from '../contracts/brokerSafety';
import type { ApprovalRecord } from '../contracts/approvalTypes';
import { parseInput } from './input';
import { surfaceNonRetryable } from './surfacedFailure';
import { reportKey } from '../contracts/reportKey';
import type { BrokerStep, RollCanary, RollReport, RollSettings } from '../contracts/rollTypes';
import { Failure } from '../contracts/failures';
import { heartbeatingActivities } from './activityOptions';
import { handleRunControls } from './runControls';

const { kafkaRollSettings, kafkaClusterState, writeRollReport, notify, stopKafkaCanary, electPreferredLeaders, runOrigin, approvalPlanHash, acquireRollLease, releaseRollLease } = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '30 minutes', maximumAttempts: 3, nonRetryableErrorTypes: [Failure.InvalidInput, Failure.BrokerTimeout, Failure.TargetBusy] }),
);
// Stopping and starting a broker are never retried by Temporal: a broker that did not come back,
// or whose worker died half-way, must stop the roll (within the heartbeat timeout), not be
// restarted again behind the operator's back.
const brokerCommands = proxyActivities<Activities>(heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 1 }));
// Waiting only reads the cluster: a wait whose worker died is taken up by another.
const brokerWaits = proxyActivities<Activities>(
  heartbeatingActivities({ startToCloseTimeout: '2 hours', maximumAttempts: 3, nonRetryableErrorTypes: [Failure.BrokerTimeout] }),
);
// A retried canary reads from its first attempt's start offsets (its heartbeat), so no
// acknowledged message goes unchecked when its worker dies.
const canary = proxyActivities<Activities>(heartbeatingActivities({ startToCloseTimeout: '24 hours', maximumAttempts: 3 }));

export const inputSchema = z.strictObject({
  /** Brokers to restart; every configured broker by default. */
  brokers: z.array(z.number().int().min(0)).min(1).optional(),
  approvalPerBroker: z.boolean().optional(),
  preferredLeaderElection: z.boolean().optional(),
  /** Write and check numbered acks=all messages during the roll (default true). */
  canary: z.boolean().default(true),
  requestedBy: z.undefined({ error: 'not accepted: ballast records who started the run (as Temporal recorded it)' }).optional(),
});
export type KafkaRollingRestartInput = z.input<typeof inputSchema>;

export interface RollStatus {
  phase: 'pre-flight' | 'checking safety' | 'awaiting approval' | 'restarting' | 'waiting for replication' | 'electing leaders' | 'paused' | 'done';
  broker?: number;
  waitingFor?: string;
  done: number[];
  remaining: number[];
  paused: boolean;
  abortRequested: boolean;
  elapsedMs: number;
  /** With approvalPerBroker: the plan a person is asked to approve now (hash and actions). */
  approval?: { what: string; plan: { hash: string; actions: string[] } };
  /** Approval answers refused in this run, and why. */
  approvalRefusals: string[];
}
export const rollStatusQuery = defineQuery<RollStatus>('status');

/**
 * Runbook: "rolling restart of the Kafka cluster".
 * Pre-flight: every broker online, no offline or under-replicated partition. Then one broker at a
 * time, the active controller last (asked of the cluster before every step): wait until the
 * broker is safe to restart (no partition it hosts would drop below min.insync.replicas),
 * optionally ask a person, restart it, wait until it is back and fully in sync, optionally elect
 * preferred leaders. A canary producer checks that no acknowledged message is lost.
 */
export async function kafkaRollingRestart(input: KafkaRollingRestartInput = {}): Promise<RollReport> {
  const request = parseInput('kafkaRollingRestart', inputSchema, input);
  const started = new Date();
  const { workflowId } = workflowInfo();
  const settings: RollSettings = await kafkaRollSettings();
  const unknown = (request.brokers ?? []).filter((id) => !settings.brokers.includes(id));
  if (unknown.length) {
    throw ApplicationFailure.nonRetryable(`kafkaRollingRestart: invalid input: input.brokers: not configured: ${unknown.join(', ')}`, Failure.InvalidInput);
  }
  const remaining = [...new Set(request.brokers ?? settings.brokers)];
  const order: number[] = [];
  const restarted: BrokerStep[] = [];
  let neverSafe: PartitionConcern[] = [];
  const controls = handleRunControls();
  const status: RollStatus = { phase: 'pre-flight', done: [], remaining, paused: false, abortRequested: false, elapsedMs: 0, approvalRefusals: [] };
  const show = (phase: RollStatus['phase'], details: string, broker?: number, waitingFor?: string) => {
    Object.assign(status, { phase, broker, waitingFor });
    setCurrentDetails(details);
  };
  const gate = createApprovalGate({
    notify: async (kind, title, text) => {
      await notify({ kind: kind === 'reminder' ? 'reminder' : 'failure', title, text, workflowId });
    },
  });
  setHandler(rollStatusQuery, () => ({ ...status, approval: gate.waitingOn, approvalRefusals: [...gate.refusals], paused: controls.paused, abortRequested: controls.abortedBy !== undefined, remaining: [...remaining], done: restarted.map((s) => s.brokerId), elapsedMs: Date.now() - started.getTime() }));
  const origin = await runOrigin();
  const approvalPerBroker = request.approvalPerBroker ?? settings.approvalPerBroker;
  const reportKeyOfRun = reportKey('kafka-rolls', started, workflowId);

  // Pre-flight.
  show('pre-flight', 'Pre-flight: every broker online, no offline or under-replicated partition.');
  const before = await kafkaClusterState({ withQuorumLeader: false });
  const missing = settings.brokers.filter((id) => !before.brokersOnline.includes(id));
  if (missing.length || before.offline > 0 || before.underReplicated > 0) {
    const why = [missing.length ? `broker(s) offline: ${missing.join(', ')}` : '', before.offline ? `${before.offline} offline partition(s)` : '', before.underReplicated ? `${before.underReplicated} under-replicated partition(s)` : ''].filter(Boolean).join('; ');
    throw ApplicationFailure.nonRetryable(`kafkaRollingRestart: pre-flight failed, no broker was touched: ${why}`, Failure.PreflightFailed);
  }
  // One roll per cluster: a second one would count the first's broker as "down" or restart a
  // second broker while the first is out.
  await surfaceNonRetryable(acquireRollLease({ clusterId: before.clusterId }));

  /** The safety rule, plus: every other configured broker is online (never two down at once). */
  const brokerSafety = (brokerId: number, state: KafkaClusterStateOf): Clearance => {
    const verdict = restartSafety(brokerId, state.partitions);
    const down = settings.brokers.filter((id) => id !== brokerId && !state.brokersOnline.includes(id));
    return {
      safe: verdict.safe && down.length === 0,
      reasons: [...down.map((id) => `broker ${id} is offline`), ...verdict.blocking.map((c) => `${c.topic}-${c.partition} (${c.why})`)],
      neverSafe: verdict.neverSafe,
    };
  };

  const canaryId = `${workflowId}`;
  const canaryScope = new CancellationScope();
  const canaryRun = request.canary ? canaryScope.run(() => canary.runKafkaCanary({ canaryId, topic: settings.canaryTopic })) : undefined;
  // The canary's outcome is read after the roll; a failure before then must not go unhandled.
  canaryRun?.catch(() => undefined);

  /** Waits out a pause; false when the roll is aborted (before or during the pause). */
  const holdWhilePaused = async (): Promise<boolean> => {
    if (controls.paused && controls.abortedBy === undefined) {
      show('paused', `PAUSED before the next broker (${remaining.join(', ')} left). Send signal "resume" or "abort" with {"by": "<name>"}.`);
      await condition(() => !controls.paused || controls.abortedBy !== undefined);
    }
    return controls.abortedBy === undefined;
  };

  /**
   * Re-reads the cluster until `brokerId` may be restarted, with backoff, until the safety
   * timeout. Every wait ends early on an abort; a pause holds it and restarts its clock.
   */
  const waitUntilSafe = async (brokerId: number, first: KafkaClusterStateOf): Promise<{ verdict: Clearance } | { halted: string } | { aborted: true }> => {
    let waitStarted = Date.now();
    let backoff = settings.safetyBackoffSeconds;
    let verdict = brokerSafety(brokerId, first);
    while (!verdict.safe) {
      const waited = (Date.now() - waitStarted) / 1000;
      const blockers = verdict.reasons.slice(0, 5).join('; ');
      if (waited >= settings.safetyTimeoutSeconds) {
        return { halted: `broker ${brokerId} was not safe to restart for ${Math.round(waited)} s (limit ${settings.safetyTimeoutSeconds} s): ${verdict.reasons.length} reason(s), e.g. ${blockers}` };
      }
      show('checking safety', `Broker ${brokerId} is not safe to restart yet: ${blockers}. Re-checking in ${backoff} s.`, brokerId, 'in-sync replicas');
      await condition(() => controls.paused || controls.abortedBy !== undefined, backoff * 1000);
      if (controls.paused) {
        if (!(await holdWhilePaused())) return { aborted: true };
        waitStarted = Date.now();
      }
      if (controls.abortedBy !== undefined) return { aborted: true };
      backoff = Math.min(backoff * 2, settings.safetyBackoffMaxSeconds);
      verdict = brokerSafety(brokerId, await kafkaClusterState({ withQuorumLeader: false }));
      if (controls.abortedBy !== undefined) return { aborted: true };
    }
    return { verdict };
  };

  /** Asks a person to approve the restart of this broker: its own plan, hash and signature. */
  const approveRestart = async (brokerId: number, clusterId: string): Promise<ApprovalRecord> => {
    const hash = await approvalPlanHash({ runbook: 'kafkaRollingRestart', workflowId, clusterId, action: 'restart broker', brokerId });
    show('awaiting approval', `Waiting for approval to restart broker ${brokerId}.`, brokerId, 'approval');
    return gate.wait({
      what: `the restart of Kafka broker ${brokerId}`,
      plan: { hash, actions: [`restart Kafka broker ${brokerId} of cluster ${clusterId}`] },
      requester: origin.requester,
      policy: settings.approval,
      stopWhen: () => controls.abortedBy,
    });
  };

  let haltedReason: string | undefined;
  let haltedBroker: number | undefined;
  try {
    while (remaining.length > 0) {
      if (!(await holdWhilePaused())) break;
      const state = await kafkaClusterState();
      const brokerId = nextBroker(remaining, state.quorumLeader)!;
      const stepStarted = Date.now();

      // Safety, then (optionally) a person, then safety again on a fresh read right before the
      // stop: an approval or a pause can be an hour old. Any of these waits ends on an abort.
      let current: KafkaClusterStateOf = state;
      let approval: ApprovalRecord | undefined;
      let cleared: Clearance | undefined;
      let safetyWaitMs = 0;
      while (!cleared) {
        const safetyStarted = Date.now();
        const safety = await waitUntilSafe(brokerId, current);
        safetyWaitMs += Date.now() - safetyStarted;
        if ('halted' in safety) {
          haltedBroker = brokerId;
          haltedReason = safety.halted;
          break;
        }
        if ('aborted' in safety) break;
        if (approvalPerBroker && !approval) {
          approval = await approveRestart(brokerId, state.clusterId);
          if (approval.outcome !== 'approved') {
            controls.abort(`${approval.outcome}${approval.by ? ` by ${approval.by}` : ''} at broker ${brokerId}`);
            break;
          }
        }
        if (!(await holdWhilePaused())) break;
        current = await kafkaClusterState({ withQuorumLeader: false });
        if (controls.abortedBy !== undefined) break;
        const verdict = brokerSafety(brokerId, current);
        if (verdict.safe) cleared = verdict;
      }
      if (!cleared) break;
      neverSafe = mergeConcerns(neverSafe, cleared.neverSafe);
      const approvalWaitMs = approval?.waitedMs ?? 0;

      // Never cancelled half-way: an abort or a cancellation waits for the broker in hand.
      const step = await CancellationScope.nonCancellable(async () => {
        const restartStarted = Date.now();
        show('restarting', `Restarting broker ${brokerId}${brokerId === state.quorumLeader ? ' (the active controller, last)' : ''}: waiting for it to leave and rejoin the cluster.`, brokerId, 'the broker to leave and rejoin');
        let waitingFor = 'it to stop';
        try {
          const stopped = await brokerCommands.stopKafkaBroker({ brokerId });
          waitingFor = 'it to leave the cluster';
          if (!stopped.goneObserved) await brokerWaits.waitBrokerGone({ brokerId, timeoutSeconds: settings.brokerGoneTimeoutSeconds });
          waitingFor = 'it to start and rejoin the cluster';
          status.waitingFor = waitingFor;
          await brokerCommands.startKafkaBroker({ brokerId });
          await brokerWaits.waitBrokerBack({ brokerId, timeoutSeconds: settings.brokerBackTimeoutSeconds });
        } catch (err) {
          return { failed: `broker ${brokerId} did not come back: waited for ${waitingFor} for ${Math.round((Date.now() - restartStarted) / 1000)} s: ${causeOf(err)}` };
        }
        const restartMs = Date.now() - restartStarted;
        const replicationStarted = Date.now();
        show('waiting for replication', `Broker ${brokerId} is back; waiting until no partition is under-replicated and its ISRs are restored.`, brokerId, 'under-replicated partitions = 0');
        try {
          await brokerWaits.waitReplicationRestored({ brokerId, timeoutSeconds: settings.replicationTimeoutSeconds });
        } catch (err) {
          return { failed: `broker ${brokerId} came back but replication was not restored: waited ${Math.round((Date.now() - replicationStarted) / 1000)} s (limit ${settings.replicationTimeoutSeconds} s): ${causeOf(err)}` };
        }
        const replicationMs = Date.now() - replicationStarted;
        let electionMs: number | undefined;
        if (request.preferredLeaderElection ?? settings.preferredLeaderElection) {
          show('electing leaders', `Broker ${brokerId} is in sync; electing preferred leaders.`, brokerId, 'preferred leader election');
          electionMs = (await electPreferredLeaders()).durationMs;
        }
        return { restartMs, replicationMs, electionMs };
      });
      order.push(brokerId);
      if ('failed' in step) {
        haltedBroker = brokerId;
        haltedReason = step.failed;
        break;
      }
      remaining.splice(remaining.indexOf(brokerId), 1);
      restarted.push({
        brokerId,
        wasQuorumLeader: brokerId === state.quorumLeader,
        safetyWaitMs,
        approvalWaitMs,
        approval,
        ...step,
        startedAt: new Date(stepStarted).toISOString(),
        finishedAt: new Date().toISOString(),
      });
    }
  } finally {
    await CancellationScope.nonCancellable(async () => {
      if (canaryRun) await stopKafkaCanary({ canaryId, topic: settings.canaryTopic });
      await releaseRollLease({ clusterId: before.clusterId });
    });
  }

  let canaryReport: RollCanary | undefined;
  let canaryProblem: string | undefined;
  if (canaryRun) {
    // The canary ends once it has read its stop marker back; a canary that cannot is cancelled.
    let settledCanary = false;
    void canaryRun.then(
      () => (settledCanary = true),
      () => (settledCanary = true),
    );
    if (!(await condition(() => settledCanary, '3 minutes'))) canaryScope.cancel();
    try {
      const c = await canaryRun;
      canaryReport = { sent: c.sent, acknowledged: c.acknowledged, produceErrors: c.produceErrors, retries: c.retries, maxLatencyMs: c.maxLatencyMs, ackedMissing: c.ackedMissing, duplicates: c.duplicates };
    } catch (err) {
      canaryProblem = `the canary did not report: ${causeOf(err)}`;
    }
  }
  const after = await kafkaClusterState({ withQuorumLeader: false });
  const finished = new Date();
  const report: RollReport = {
    workflowId,
    outcome: haltedReason ? 'halted' : controls.abortedBy ? 'aborted' : 'completed',
    haltedReason,
    haltedBroker,
    order,
    restarted,
    untouched: remaining.filter((id) => !order.includes(id)),
    neverSafe,
    canary: canaryReport,
    finalUnderReplicated: after.underReplicated,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    reportKey: reportKeyOfRun,
    abortedBy: controls.abortedBy,
    canaryProblem,
  };
  await writeRollReport(report);
  show('done', `Roll ${report.outcome}: restarted ${restarted.map((s) => s.brokerId).join(', ') || 'none'}${haltedReason ? `; HALTED: ${haltedReason}` : ''}${controls.abortedBy ? `; aborted (${controls.abortedBy})` : ''}.`);
  if (haltedReason) {
    await notify({ kind: 'failure', title: `Kafka rolling restart halted at broker ${haltedBroker}`, text: `${haltedReason}\nuntouched: ${report.untouched.join(', ') || 'none'}`, workflowId });
    throw ApplicationFailure.nonRetryable(`kafkaRollingRestart halted: ${haltedReason}; brokers not touched: ${report.untouched.join(', ') || 'none'}`, Failure.RollHalted, report);
  }
  if (canaryReport && canaryReport.ackedMissing > 0) {
    await notify({ kind: 'failure', title: 'Kafka rolling restart lost acknowledged messages', text: `${canaryReport.ackedMissing} acknowledged canary message(s) missing`, workflowId });
    throw ApplicationFailure.nonRetryable(`kafkaRollingRestart: ${canaryReport.ackedMissing} acknowledged canary message(s) missing after the roll`, Failure.AcknowledgedMessagesLost, report);
  }
  return report;
}

type KafkaClusterStateOf = Awaited<ReturnType<Activities['kafkaClusterState']>>;

/** Whether a broker may be restarted now, and what stops it. */
interface Clearance {
  safe: boolean;
  reasons: string[];
  neverSafe: PartitionConcern[];
}

function mergeConcerns(a: PartitionConcern[], b: PartitionConcern[]): PartitionConcern[] {
  const seen = new Set(a.map((c) => `${c.topic}-${c.partition}`));
  return [...a, ...b.filter((c) => !seen.has(`${c.topic}-${c.partition}`))];
}

function causeOf(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}
