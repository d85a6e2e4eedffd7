import { ApplicationFailure } from '@temporalio/activity';
import { backOff } from 'exponential-backoff';
import type { Admin } from 'kafkajs';
import { chunks } from '../common/chunks';
import { Failure } from '../../contracts/failures';

/** A group whose consumers are leaving becomes deletable within a few seconds: NON_EMPTY_GROUP fails only at the last attempt. */
const DELETE_ATTEMPTS = 10;

export function activeGroupFailure(activity: string, group: string, detail: string): ApplicationFailure {
  return ApplicationFailure.retryable(
    `${activity}: consumer group ${JSON.stringify(group)} has active members (${detail}): stop its consumers, then retry`,
    Failure.GroupHasActiveMembers,
    { group },
  );
}

export async function checkGroupsIdle(activity: string, admin: Admin, groups: string[]): Promise<void> {
  for (const chunk of chunks(groups, 50)) {
    if (!chunk.length) continue;
    const described = await admin.describeGroups(chunk);
    for (const g of described.groups) {
      if (g.members.length > 0) throw activeGroupFailure(activity, g.groupId, `${g.members.length} members, state ${g.state}`);
    }
  }
}

/** Deletes groups, ignoring ones already gone; a group that still has members fails (retryable). */
export async function deleteGroups(activity: string, admin: Admin, groups: string[]): Promise<string[]> {
  let left = groups;
  const deleted: string[] = [];
  if (!left.length) return deleted;
  let attempt = 0;
  await backOff(
    async () => {
      attempt += 1;
      try {
        const results = await admin.deleteGroups(left);
        deleted.push(...results.map((r) => r.groupId));
      } catch (err) {
        const results = (err as { groups?: { groupId: string; errorCode: number; error?: { type?: string } }[] }).groups;
        if (!results) throw err;
        const failed: string[] = [];
        for (const r of results) {
          const type = r.error?.type;
          if (!r.errorCode) deleted.push(r.groupId);
          else if (type === 'GROUP_ID_NOT_FOUND') continue;
          else if (type === 'NON_EMPTY_GROUP' && attempt >= DELETE_ATTEMPTS) throw activeGroupFailure(activity, r.groupId, 'NON_EMPTY_GROUP');
          else failed.push(r.groupId);
        }
        left = failed;
        if (failed.length) throw err;
      }
    },
    {
      numOfAttempts: DELETE_ATTEMPTS,
      startingDelay: 300,
      timeMultiple: 1,
      // Only a partial failure (one outcome per group) is worth another attempt for the rest.
      retry: (err) => Array.isArray((err as { groups?: unknown }).groups),
    },
  );
  return deleted;
}
