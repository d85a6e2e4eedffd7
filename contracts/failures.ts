/**
 * The failure types ballast's workflows and activities fail with: what a caller, the UI or a
 * retry policy matches on. Named once here so a typo is a compile error, not a retried failure.
 */
export const Failure = {
  /** Input that names something invalid or missing; the message names the field. */
  InvalidInput: 'InvalidInput',
  InvalidConfig: 'InvalidConfig',
  InvalidBackup: 'InvalidBackup',
  BackupNotFound: 'BackupNotFound',
  BackupIncomplete: 'BackupIncomplete',
  BackupCorrupt: 'BackupCorrupt',
  BackupUnusable: 'BackupUnusable',
  /**
   * A manifest that is unsigned (unless accepted explicitly), signed with a key this worker does
   * not hold, changed since it was signed, or naming objects outside its backup's folder.
   */
  BackupNotAuthentic: 'BackupNotAuthentic',
  ObjectTooLarge: 'ObjectTooLarge',
  PgToolTooOld: 'PgToolTooOld',
  TargetUnreachable: 'TargetUnreachable',
  /** A target the restore must not write: production for a drill, unlisted, taken, not ours. */
  TargetRefused: 'TargetRefused',
  /** A target, backup or cluster another running run holds a lease on. */
  TargetBusy: 'TargetBusy',
  GroupHasActiveMembers: 'GroupHasActiveMembers',
  UnexpectedSchema: 'UnexpectedSchema',
  /** A restore target holds tables in a state no attempt of the restore leaves: a person decides. */
  TargetConflict: 'TargetConflict',
  TableNotFound: 'TableNotFound',
  UnknownTopic: 'UnknownTopic',
  PreflightFailed: 'PreflightFailed',
  VerificationFailed: 'VerificationFailed',
  DrillFailed: 'DrillFailed',
  /** A demo reset outside a `demo` config, or of a system without the demo marker: refused whatever `force` says. */
  DemoGuardRefused: 'DemoGuardRefused',
  Rejected: 'Rejected',
  /** An approval answer that does not count (unsigned, another plan, not an approver...). */
  ApprovalRefused: 'ApprovalRefused',
  /** A run that carried a pre-approval no rule allows; refused at start, nothing touched. */
  PreApprovalRefused: 'PreApprovalRefused',
  ApprovalTimedOut: 'ApprovalTimedOut',
  /** A step given a stored restore plan that is gone, or not the one approved (changed since). */
  PlanNotApproved: 'PlanNotApproved',
  RollHalted: 'RollHalted',
  BrokerTimeout: 'BrokerTimeout',
  NoQuorumLeader: 'NoQuorumLeader',
  LeaderElectionFailed: 'LeaderElectionFailed',
  RestartCommandFailed: 'RestartCommandFailed',
  BrokerStopFailed: 'BrokerStopFailed',
  BrokerStartFailed: 'BrokerStartFailed',
  AcknowledgedMessagesLost: 'AcknowledgedMessagesLost',
} as const;

export type FailureType = (typeof Failure)[keyof typeof Failure];
