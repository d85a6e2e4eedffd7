import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { armouredSignature, verifySignature } from '../../activities/approval/signatures';
import { approvalPolicy, planHash } from '../../activities/approval/approvals';
import { parseConfig } from '../../workers/config';
import { approvalText, canonicalJson, preApprovalText, type ApprovalPolicy } from '../../contracts/approvalTypes';
import { answerProblem, approverProblem, type GateRequest } from '../../workflows/approval';
import { preApprovalProblem } from '../../workflows/preApproval';
import { createApprovers, type Approvers } from '../../localStack/approvers';

const policy: ApprovalPolicy = { unsignedAllowed: false, approvers: [], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 };
const hash = `sha256:${'a'.repeat(64)}`;
const request = (p: Partial<ApprovalPolicy> = {}): GateRequest => ({ what: 'a restore', plan: { hash, actions: ['drop database shop'] }, requester: 'alice', policy: { ...policy, ...p } });

describe('answerProblem (checked before any signature)', () => {
  it('refuses any answer while nothing waits', () => {
    assert.match(answerProblem({ plan: hash, reason: 'x', signature: 'sig' }, 'approve', undefined) ?? '', /nothing is waiting/);
  });

  it('refuses an answer for another plan, or naming none', () => {
    assert.match(answerProblem({ plan: `sha256:${'b'.repeat(64)}`, reason: 'x', signature: 's' }, 'approve', request()) ?? '', /is for plan sha256:b+, but the run waits on plan sha256:a+/);
    assert.match(answerProblem({ reason: 'x', signature: 's' }, 'approve', request()) ?? '', /must name the plan/);
  });

  it('refuses an unsigned approval when signatures are required, but lets an unsigned reject stop the run', () => {
    assert.match(answerProblem({ plan: hash, reason: 'x', by: 'bob' }, 'approve', request()) ?? '', /unsigned approval is refused/);
    assert.equal(answerProblem({ plan: hash, reason: 'wrong backup', by: 'bob' }, 'reject', request()), undefined);
  });

  it('takes an unsigned name where the config allows it, still under four-eyes and the approver list', () => {
    assert.equal(answerProblem({ plan: hash, reason: 'x', by: 'bob' }, 'approve', request({ unsignedAllowed: true })), undefined);
    assert.match(answerProblem({ plan: hash, reason: 'x', by: 'alice' }, 'approve', request({ unsignedAllowed: true })) ?? '', /alice started this run and cannot approve it too/);
    assert.match(answerProblem({ plan: hash, reason: 'x', by: 'carol' }, 'approve', request({ unsignedAllowed: true, approvers: ['bob'] })) ?? '', /carol is not an approver/);
    assert.match(answerProblem({ plan: hash, reason: 'x' }, 'approve', request({ unsignedAllowed: true })) ?? '', /must say who/);
  });

  it('refuses an answer without a reason, or with a reason over several lines (it is signed text)', () => {
    assert.match(answerProblem({ plan: hash, reason: ' ', signature: 's' }, 'approve', request()) ?? '', /must say why/);
    assert.match(answerProblem({ plan: hash, reason: 'ok\ndecision: approve', signature: 's' }, 'approve', request()) ?? '', /must be one line/);
    assert.match(answerProblem('approve', 'approve', request()) ?? '', /is an object/);
  });

  it('four-eyes holds for a signer, and can be switched off outside production', () => {
    assert.match(approverProblem('alice', request()) ?? '', /started this run/);
    assert.equal(approverProblem('alice', request({ fourEyes: false })), undefined);
  });
});

describe('approvalPolicy (from the config)', () => {
  const minimal = {
    postgres: { user: 'ballast', databases: ['shop'] },
    clickhouse: { url: 'http://127.0.0.1:8123', databases: [{ name: 'analytics' }] },
    kafka: { brokers: [{ id: 1, host: '127.0.0.1', port: 9092 }], restart: { backend: 'kubernetes' } },
    objectStore: { backupBucket: 'ballast-backups' },
  };

  it('allows typed names only outside production and only without an allowed-signers file', () => {
    assert.equal(approvalPolicy(parseConfig({ ...minimal, environment: 'demo' })).unsignedAllowed, true);
    assert.equal(approvalPolicy(parseConfig({ ...minimal, environment: 'staging', approvals: { allowedSignersFile: 'signers' } })).unsignedAllowed, false);
    const production = approvalPolicy(parseConfig({ ...minimal, environment: 'production', approvals: { allowedSignersFile: 'signers', approvers: ['bob'] }, backup: { manifestKey: { env: 'BALLAST_MANIFEST_KEY' } } }));
    assert.deepEqual(production, { unsignedAllowed: false, approvers: ['bob'], fourEyes: true, reminderAfterMinutes: 15, timeoutMinutes: 60 });
  });
});

describe('the signed texts and the plan hash', () => {
  it('an approval text names the run, the plan and the decision, so none can be swapped', () => {
    const a = { workflowId: 'w', runId: 'r1', planHash: hash, decision: 'approve' as const, reason: 'incident 7' };
    assert.equal(approvalText(a), `ballast approval v1\nworkflow: w\nrun: r1\nplan: ${hash}\ndecision: approve\nreason: incident 7\n`);
    assert.notEqual(approvalText(a), approvalText({ ...a, runId: 'r2' }));
    assert.notEqual(approvalText(a), approvalText({ ...a, decision: 'reject' }));
  });

  it('a pre-approval text pins the backup, the components (sorted) and the targets (canonical JSON)', () => {
    const text = preApprovalText({ workflowId: 'w', backupId: 'b1', components: ['postgres', 'clickhouse'], targets: { postgres: { shop: 'shop' }, buckets: {} }, expiresAt: '2026-01-01T00:00:00Z', reason: 'r' });
    assert.match(text, /^ballast pre-approval v1\nworkflow: w\nbackup: b1\ncomponents: clickhouse,postgres\ntargets: \{"buckets":\{\},"postgres":\{"shop":"shop"\}\}\n/);
    assert.match(preApprovalText({ workflowId: 'w', backupId: 'b1', components: undefined, targets: {}, expiresAt: 'x', reason: 'r' }), /components: all/);
  });

  it('the plan hash is stable under key order and changes with any action', () => {
    const plan = { backupId: 'b', targets: { postgres: { shop: 'shop' }, kafkaSuffix: '' }, actions: [{ action: 'drop', target: 'shop' }] };
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    assert.equal(planHash(plan), planHash({ actions: plan.actions, targets: { kafkaSuffix: '', postgres: { shop: 'shop' } }, backupId: 'b' }));
    assert.notEqual(planHash(plan), planHash({ ...plan, actions: [{ action: 'drop', target: 'orders' }] }));
    assert.match(planHash(plan), /^sha256:[0-9a-f]{64}$/);
  });
});

describe('pre-approval rules', () => {
  const now = new Date('2026-06-01T12:00:00Z');
  const valid = { reason: 'incident 9', expiresAt: '2026-06-01T18:00:00Z', signature: 'sig' };

  it('accepts a signed, unexpired pre-approval for a named backup', () => {
    assert.equal(preApprovalProblem(valid, '2026-06-01T02-00-00Z-abcdef', now), undefined);
  });

  it('refuses an unsigned name, "latest", an expired one and one that lasts more than a day', () => {
    assert.match(preApprovalProblem({ by: 'bob', reason: 'trust me' }, 'b1', now) ?? '', /only with a signed pre-approval.*input\.preApproved\.signature/);
    assert.match(preApprovalProblem(valid, 'latest', now) ?? '', /must name it, not "latest"/);
    assert.match(preApprovalProblem({ ...valid, expiresAt: '2026-06-01T11:59:00Z' }, 'b1', now) ?? '', /expired at/);
    assert.match(preApprovalProblem({ ...valid, expiresAt: '2026-06-03T12:00:00Z' }, 'b1', now) ?? '', /at most 24 h/);
  });
});

describe('verifySignature (ssh-keygen against an allowed-signers file)', () => {
  let approvers: Approvers;
  const text = approvalText({ workflowId: 'w', runId: 'r', planHash: hash, decision: 'approve', reason: 'ok' });
  before(async () => {
    approvers = await createApprovers(['bob'], ['mallory']);
  });

  it('names the signer and the key fingerprint, whether the signature is armoured or only its base64 body', async () => {
    const signature = await approvers.sign('bob', text);
    const expected = { ok: true, principal: 'bob', keyFingerprint: await approvers.fingerprint('bob') };
    assert.deepEqual(await verifySignature(approvers.allowedSignersFile, text, signature), expected);
    const body = signature.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    assert.deepEqual(await verifySignature(approvers.allowedSignersFile, text, body), expected);
  });

  it('refuses a key not in the file, a changed text, a signature for another namespace, and garbage', async () => {
    const refusal = async (signature: string, signedText = text) => {
      const check = await verifySignature(approvers.allowedSignersFile, signedText, signature);
      assert.equal(check.ok, false);
      return check.ok ? '' : check.refusal;
    };
    assert.match(await refusal(await approvers.sign('mallory', text)), /not in the allowed-signers file/);
    assert.match(await refusal(await approvers.sign('bob', text), text.replace('run: r', 'run: r2')), /does not match this text/);
    // A git commit signature by the same key must not pass for an approval.
    assert.match(await refusal(await approvers.sign('bob', text, 'git')), /allowed-signers file|namespace/);
    assert.match(await refusal('{"by":"bob"}'), /not an SSH signature/);
    assert.equal(armouredSignature('not a signature'), undefined);
  });
});
