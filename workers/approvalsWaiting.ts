import type { Client } from '@temporalio/client';
import type { ApprovalWaiting } from '../contracts/approvalTypes';

export interface WaitingRun {
  workflowId: string;
  workflowType: string;
  planHash: string;
  what: string;
  since: string;
  waitingSeconds: number;
}

/**
 * The open runs on a task queue that wait for an approval, from their "approval" query (the gate
 * answers it; a runbook without a gate does not, and is passed over). For the CLI's status and
 * the worker's metrics: asked of Temporal each time, so a restarted worker still counts them.
 */
export async function runsWaitingForApproval(client: Client, taskQueue: string, now: Date): Promise<WaitingRun[]> {
  const waiting: WaitingRun[] = [];
  for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue.replace(/'/g, "\\'")}' AND ExecutionStatus = 'Running'` })) {
    const a = await client.workflow
      .getHandle(w.workflowId, w.runId)
      .query<ApprovalWaiting | null>('approval')
      .catch(() => null);
    if (a) waiting.push({ workflowId: w.workflowId, workflowType: w.type, planHash: a.plan.hash, what: a.what, since: a.since, waitingSeconds: Math.round((now.getTime() - new Date(a.since).getTime()) / 1000) });
  }
  return waiting;
}
