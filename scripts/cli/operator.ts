/**
 * The operator at the keyboard: their SSH key (--key PATH, or ssh-agent), the name the
 * allowed-signers file gives it, and their approval signatures, made exactly as the approvals
 * design says: `ssh-keygen -Y sign -n ballast-approval` over approvalText(...).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { runProcess } from '../../activities/common/process';
import { APPROVAL_NAMESPACE } from '../../contracts/approvalTypes';
import { CliError, Exit, usageError } from './errors';

export interface OperatorKey {
  /** "ssh-ed25519 AAAA...": type and base64, no comment. */
  publicKey: string;
  /** A private key file, or undefined when the private half is in ssh-agent. */
  privateKeyFile?: string;
  source: string;
}

const keyOf = (line: string) => line.trim().split(/\s+/).slice(0, 2).join(' ');

/** The key `--key PATH` names, or the keys ssh-agent holds. */
export async function operatorKeys(keyPath: string | undefined): Promise<OperatorKey[]> {
  if (keyPath) {
    const file = path.resolve(keyPath);
    if (!existsSync(file)) throw usageError(`--key ${keyPath}: no such file`);
    const pub = existsSync(`${file}.pub`) ? readFileSync(`${file}.pub`, 'utf8') : (await runProcess('ssh-keygen', ['-y', '-f', file], { timeoutMs: 30_000 })).stdout;
    if (!/^\S+ [A-Za-z0-9+/]+=*/.test(pub.trim())) throw usageError(`--key ${keyPath}: not an SSH private key (or it has a passphrase and no ${file}.pub beside it)`);
    return [{ publicKey: keyOf(pub), privateKeyFile: file, source: file }];
  }
  if (!process.env.SSH_AUTH_SOCK) return [];
  const listed = await runProcess('ssh-add', ['-L'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!listed || listed.exitCode !== 0) return [];
  return listed.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => ({ publicKey: keyOf(l), source: `ssh-agent (${l.trim().split(/\s+/)[2] ?? 'no comment'})` }));
}

/** The principal(s) an allowed-signers file lists for `publicKey`. */
export function principalsOf(allowedSignersText: string, publicKey: string): string[] {
  return allowedSignersText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .flatMap((line) => {
      const at = line.indexOf(publicKey);
      return at > 0 && /\s$/.test(line.slice(0, at)) ? line.split(/\s+/)[0]!.split(',') : [];
    });
}

/** The key to sign with: the one given, or the agent's key that the allowed-signers file lists (else its first). */
export function chooseKey(keys: OperatorKey[], allowedSignersText: string | undefined): OperatorKey {
  const listed = allowedSignersText === undefined ? undefined : keys.find((k) => principalsOf(allowedSignersText, k.publicKey).length > 0);
  const key = listed ?? keys[0];
  if (!key) throw usageError('no SSH key to sign with: pass --key PATH, or add your key to ssh-agent (SSH_AUTH_SOCK)');
  return key;
}

/** The armoured signature of `text` in the ballast-approval namespace. */
export async function signApprovalText(key: OperatorKey, text: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ballast-cli-'));
  try {
    const textFile = path.join(dir, 'approval.txt');
    writeFileSync(textFile, text);
    let keyFile = key.privateKeyFile;
    if (!keyFile) {
      // ssh-keygen signs with the agent's private half when -f names the public key.
      keyFile = path.join(dir, 'agent-key.pub');
      writeFileSync(keyFile, `${key.publicKey}\n`);
    }
    const signed = await runProcess('ssh-keygen', ['-Y', 'sign', '-f', keyFile, '-n', APPROVAL_NAMESPACE, textFile], { timeoutMs: 60_000 });
    if (signed.exitCode !== 0) throw new CliError(Exit.failed, `ssh-keygen -Y sign with ${key.source} failed: ${signed.stderr.trim().split('\n').pop() ?? `exit ${signed.exitCode}`}`);
    return readFileSync(`${textFile}.sig`, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Who starts runs from this shell, as Temporal records it (the requester four-eyes compares
 * approvers with): BALLAST_OPERATOR, else the allowed-signers name of the operator's key, else user@host.
 */
export async function operatorIdentity(allowedSignersFile: string | undefined, keyPath: string | undefined): Promise<string> {
  if (process.env.BALLAST_OPERATOR) return process.env.BALLAST_OPERATOR;
  if (allowedSignersFile && existsSync(allowedSignersFile)) {
    const text = readFileSync(allowedSignersFile, 'utf8');
    for (const key of await operatorKeys(keyPath).catch(() => [])) {
      const [principal] = principalsOf(text, key.publicKey);
      if (principal) return principal;
    }
  }
  return `${userInfo().username}@${hostname()}`;
}
