/** Types of the rolling restart, shared by its workflow and activities (types only). */
import type { ApprovalPolicy, ApprovalRecord } from './approvalTypes';
import type { PartitionConcern } from './brokerSafety';

export interface RollSettings {
  brokers: number[];
  backend: 'local' | 'command' | 'kubernetes';
  approval: ApprovalPolicy;
  safetyTimeoutSeconds: number;
  safetyBackoffSeconds: number;
  safetyBackoffMaxSeconds: number;
  brokerGoneTimeoutSeconds: number;
  brokerBackTimeoutSeconds: number;
  replicationTimeoutSeconds: number;
  preferredLeaderElection: boolean;
  approvalPerBroker: boolean;
  canaryTopic: string;
  canaryIntervalMs: number;
}

export interface BrokerStep {
  brokerId: number;
  wasQuorumLeader: boolean;
  safetyWaitMs: number;
  approvalWaitMs: number;
  /** With approvalPerBroker: who approved this broker's restart, for which plan hash, with which key. */
  approval?: ApprovalRecord;
  restartMs: number;
  replicationMs: number;
  electionMs?: number;
  startedAt: string;
  finishedAt: string;
}

export interface RollCanary {
  sent: number;
  acknowledged: number;
  produceErrors: number;
  retries: number;
  maxLatencyMs: number;
  ackedMissing: number;
  duplicates: number;
}

export interface RollReport {
  workflowId: string;
  outcome: 'completed' | 'aborted' | 'halted';
  /** Why the roll stopped early: which broker, what it waited for, for how long. */
  haltedReason?: string;
  haltedBroker?: number;
  order: number[];
  restarted: BrokerStep[];
  untouched: number[];
  neverSafe: PartitionConcern[];
  canary?: RollCanary;
  /** Set when the canary could not report: the roll then proves nothing about lost messages. */
  canaryProblem?: string;
  finalUnderReplicated?: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  reportKey: string;
  abortedBy?: string;
}
