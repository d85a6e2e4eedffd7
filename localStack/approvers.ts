import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runProcess } from '../activities/common/process';
import { APPROVAL_NAMESPACE, approvalText, type Decision } from '../contracts/approvalTypes';

/**
 * Real SSH keys for approval tests and the benchmark, made with ssh-keygen the way the README
 * tells an approver to: `listed` go into an allowed-signers file, `unlisted` exist but are not in it.
 */
export interface Approvers {
  allowedSignersFile: string;
  /** ssh-keygen -Y sign -n <namespace> over `text`, with `name`'s key: the armoured signature. */
  sign(name: string, text: string, namespace?: string): Promise<string>;
  /** Signs an approval the way the waiting run shows it. */
  signAnswer(name: string, a: { workflowId: string; runId: string; planHash: string; decision?: Decision; reason: string }): Promise<{ plan: string; reason: string; signature: string }>;
  /** The key's SHA256 fingerprint, as ssh-keygen -lf prints it. */
  fingerprint(name: string): Promise<string>;
}

async function run(args: string[], input?: string): Promise<string> {
  const result = await runProcess('ssh-keygen', args, { timeoutMs: 30_000, input });
  if (result.exitCode !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

export async function createApprovers(listed: string[], unlisted: string[] = []): Promise<Approvers> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ballast-approvers-'));
  const key = (name: string) => path.join(dir, name);
  for (const name of [...listed, ...unlisted]) await run(['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key(name)]);
  const allowedSignersFile = path.join(dir, 'allowed_signers');
  const lines = listed.map((name) => `${name} namespaces="${APPROVAL_NAMESPACE}" ${readFileSync(`${key(name)}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}`);
  writeFileSync(allowedSignersFile, `# test approvers\n${lines.join('\n')}\n`);
  let n = 0;
  const sign = async (name: string, text: string, namespace = APPROVAL_NAMESPACE) => {
    const file = path.join(dir, `text-${n++}`);
    writeFileSync(file, text);
    await run(['-Y', 'sign', '-f', key(name), '-n', namespace, file]);
    return readFileSync(`${file}.sig`, 'utf8');
  };
  return {
    allowedSignersFile,
    sign,
    async signAnswer(name, a) {
      const decision = a.decision ?? 'approve';
      return { plan: a.planHash, reason: a.reason, signature: await sign(name, approvalText({ ...a, decision })) };
    },
    async fingerprint(name) {
      return (await run(['-l', '-f', `${key(name)}.pub`])).split(' ')[1]!;
    },
  };
}
