import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { canonicalJson, type ApprovalPolicy, type RunOrigin, type SignatureCheck } from '../../contracts/approvalTypes';
import type { Config } from '../../contracts/config';
import type { ActivityDeps } from '../deps';
import { verifySignature } from './signatures';

/** The approval rules of the config, for workflow code (which cannot read the config). */
export function approvalPolicy(config: Config): ApprovalPolicy {
  const a = config.approvals;
  return {
    unsignedAllowed: a.allowedSignersFile === undefined && config.environment !== 'production',
    approvers: a.approvers,
    fourEyes: a.fourEyes,
    reminderAfterMinutes: a.reminderAfterMinutes,
    timeoutMinutes: a.timeoutMinutes,
  };
}

/** "sha256:<hex>" over the plan's canonical JSON: the same plan always has the same hash. */
export function planHash(plan: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(plan)).digest('hex')}`;
}

export function createApprovalActivities(deps: ActivityDeps) {
  const { config } = deps;
  return {
    /** The hash of a plan built in workflow code (which has no sha256 of its own). */
    async approvalPlanHash(plan: unknown): Promise<string> {
      return planHash(plan);
    },

    /** Verifies an approver's SSH signature over `text` against approvals.allowedSignersFile. */
    async verifyApprovalSignature({ text, signature }: { text: string; signature: string }): Promise<SignatureCheck> {
      const file = config.approvals.allowedSignersFile;
      if (!file) return { ok: false, refusal: 'approvals.allowedSignersFile is not set, so no signature can be checked' };
      return verifySignature(file, text, signature);
    },

    /**
     * Who started the calling run, as Temporal recorded it: the identity on the root run's start
     * event, and the schedule that started it. A TemporalScheduledById search attribute can be
     * set by any client, so a schedule counts only when the schedule itself lists the run among
     * the workflows it started.
     */
    async runOrigin(): Promise<RunOrigin> {
      const { client, info } = Context.current();
      const own = info.workflowExecution;
      if (!own) throw new Error('runOrigin is called from a workflow only');
      const self = await client.workflow.getHandle(own.workflowId, own.runId).describe();
      const root = self.rootExecution?.workflowId && self.rootExecution.runId ? { workflowId: self.rootExecution.workflowId, runId: self.rootExecution.runId } : own;
      const rootDescription = root.runId === own.runId ? self : await client.workflow.getHandle(root.workflowId, root.runId).describe();
      const history = await client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId: root.workflowId, runId: root.runId },
        maximumPageSize: 1,
      });
      const requester = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.identity || 'unknown';
      const origin: RunOrigin = { requester };
      const parent = self.parentExecution;
      if (parent?.workflowId && parent.runId) {
        origin.parentWorkflowType = (await client.workflow.getHandle(parent.workflowId, parent.runId).describe()).type;
      }
      const claimed = rootDescription.searchAttributes.TemporalScheduledById?.[0];
      if (typeof claimed === 'string' && claimed) {
        const schedule = await client.schedule
          .getHandle(claimed)
          .describe()
          .catch(() => undefined);
        const started = [...(schedule?.info.runningActions ?? []), ...(schedule?.info.recentActions ?? []).map((a) => a.action)];
        if (started.some((a) => a.workflow.workflowId === root.workflowId && [root.runId, rootDescription.raw.workflowExecutionInfo?.firstRunId].includes(a.workflow.firstExecutionRunId))) {
          origin.scheduleId = claimed;
        }
      }
      return origin;
    },
  };
}
