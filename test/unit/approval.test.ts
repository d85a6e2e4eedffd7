import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { approvalRefusal, type ApprovalPolicy } from '../../workflows/approval';

const policy: ApprovalPolicy = { approvers: ['alice', 'bob'], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 };

describe('approvalRefusal', () => {
  it('accepts an approver who did not request the run, with a reason', () => {
    assert.equal(approvalRefusal({ by: 'bob', reason: 'incident 12' }, policy, 'alice'), undefined);
  });

  it('refuses someone not on the approver list', () => {
    assert.match(approvalRefusal({ by: 'mallory', reason: 'x' }, policy, 'alice') ?? '', /mallory is not an approver \(restore\.approval\.approvers: alice, bob\)/);
  });

  it('refuses the requester under four-eyes, and allows them without it', () => {
    assert.match(approvalRefusal({ by: 'alice', reason: 'x' }, policy, 'alice') ?? '', /requested this run and cannot approve it too/);
    assert.equal(approvalRefusal({ by: 'alice', reason: 'x' }, { ...policy, fourEyes: false }, 'alice'), undefined);
  });

  it('refuses an answer without who or why', () => {
    assert.match(approvalRefusal({ by: ' ', reason: 'x' }, policy, undefined) ?? '', /who approves/);
    assert.match(approvalRefusal({ by: 'bob', reason: '' }, policy, undefined) ?? '', /say why/);
    assert.match(approvalRefusal(undefined, policy, undefined) ?? '', /who approves/);
  });

  it('lets any named person approve when no approver list is configured', () => {
    assert.equal(approvalRefusal({ by: 'carol', reason: 'x' }, { ...policy, approvers: [] }, 'alice'), undefined);
  });
});
