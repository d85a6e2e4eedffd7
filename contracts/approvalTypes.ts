/**
 * Approvals: what a person approves, the exact text they sign, and what the report records.
 * Pure: workflow code, activities, the tests and the README's shell recipe all build the same text.
 */

/** ssh-keygen's -n: a signature made for anything else (a git commit, a file) is not an approval. */
export const APPROVAL_NAMESPACE = 'ballast-approval';

/** What a person approves: the destructive actions listed, under a stable hash of them. */
export interface ApprovalPlan {
  /** "sha256:<64 hex>" over the plan's canonical JSON. */
  hash: string;
  actions: string[];
  /** Shown beside the actions: what the approver should know (an unsigned or partial backup). */
  warnings?: string[];
}

/** How an approval gate decides. Read from the config's approvals section by a settings activity. */
export interface ApprovalPolicy {
  /**
   * false when approvals.allowedSignersFile is set: only an SSH signature from a listed key
   * counts. true (demo and staging without a file): a typed name counts, and the report says
   * "unsigned".
   */
  unsignedAllowed: boolean;
  /** Names (or signer principals) who may approve; empty means anyone the file lists, or any name. */
  approvers: string[];
  /** The requester (recorded by ballast, never taken from the input) may not approve. */
  fourEyes: boolean;
  reminderAfterMinutes: number;
  timeoutMinutes: number;
}

export type Decision = 'approve' | 'reject';

/** What an approver sends with the "approve" or "reject" signal or update. */
export interface ApprovalAnswer {
  /** The plan hash this answer is for, as shown by the waiting run. */
  plan?: string;
  reason: string;
  /** `ssh-keygen -Y sign -n ballast-approval` over approvalText(...): armoured, or its base64 body. */
  signature?: string;
  /** Unsigned answers only: who answers. A signed answer's signer is the key's principal. */
  by?: string;
}

/**
 * What the "approval" query of a run answers while its gate waits (null otherwise): what the CLI
 * shows and signs, and what the metrics count as waiting.
 */
export interface ApprovalWaiting {
  what: string;
  plan: ApprovalPlan;
  /** The run the signed text names (approvalText's workflow and run). */
  workflowId: string;
  runId: string;
  requester: string;
  /** When the wait began (ISO 8601). */
  since: string;
  /** Whether a typed name approves (no allowed-signers file in a demo or staging config). */
  unsignedAllowed: boolean;
  fourEyes: boolean;
  timeoutMinutes: number;
  /**
   * The wait takes a typed confirmation (demoReset): update "confirm" with the environment's name
   * typed by the person, not "approve". The name itself is not given here: typing it is the check.
   */
  typedConfirmation: boolean;
}

/** The text an approver signs for one decision on one plan in one run. */
export function approvalText(a: { workflowId: string; runId: string; planHash: string; decision: Decision; reason: string }): string {
  return ['ballast approval v1', `workflow: ${a.workflowId}`, `run: ${a.runId}`, `plan: ${a.planHash}`, `decision: ${a.decision}`, `reason: ${a.reason}`, ''].join('\n');
}

/** A restore approved before it starts: signed over the backup id and targets it may restore (preApprovalText). */
export interface SignedPreApproval {
  reason: string;
  /** ISO 8601, at most 24 hours ahead: a pre-approval is for an incident, not for ever. */
  expiresAt: string;
  signature: string;
}

/** The text a pre-approver signs: the run, the backup, the components and the targets, in full. */
export function preApprovalText(a: { workflowId: string; backupId: string; components: string[] | undefined; targets: unknown; expiresAt: string; reason: string }): string {
  return [
    'ballast pre-approval v1',
    `workflow: ${a.workflowId}`,
    `backup: ${a.backupId}`,
    `components: ${a.components ? [...a.components].sort().join(',') : 'all'}`,
    `targets: ${canonicalJson(a.targets)}`,
    `expires: ${a.expiresAt}`,
    `reason: ${a.reason}`,
    '',
  ].join('\n');
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The verdict on one signature, from the worker (ssh-keygen -Y verify against the allowed-signers file). */
export type SignatureCheck = { ok: true; principal: string; keyFingerprint: string } | { ok: false; refusal: string };

/** Who started a run, as Temporal recorded it: the requester under four-eyes. */
export interface RunOrigin {
  /** The identity on the root workflow's start event (the CLI's signer, the UI's user, a client's identity). */
  requester: string;
  /** Set when the root run was started by a Temporal Schedule (its TemporalScheduledById). */
  scheduleId?: string;
  /** The parent workflow's type, for a child run. */
  parentWorkflowType?: string;
}

export interface ApprovalRecord {
  required: boolean;
  /** 'pre-approved': the gate was skipped by a rule the report names in `reason`. */
  outcome: 'approved' | 'rejected' | 'timed out' | 'pre-approved' | 'aborted';
  planHash?: string;
  /** Who asked for the run, as ballast recorded it. */
  requester?: string;
  by?: string;
  /** How `by` was established: an SSH signature, a typed name, or a rule of the config. */
  authentication?: 'ssh-signature' | 'unsigned' | 'policy';
  keyFingerprint?: string;
  reason?: string;
  via?: 'signal' | 'update' | 'input' | 'policy' | 'parent drill';
  requestedAt: string;
  answeredAt?: string;
  waitedMs: number;
  remindersSent: number;
  /** Every answer refused while this gate waited, and why. */
  refusals: string[];
}
