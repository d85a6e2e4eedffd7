/**
 * Checks an approver's SSH signature with ssh-keygen itself, against git's allowed-signers file:
 * the reference implementation of the format, so ballast reads the file (options, namespaces,
 * validity dates) exactly as `git verify-commit` does.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { APPROVAL_NAMESPACE, type SignatureCheck } from '../../contracts/approvalTypes';
import { runProcess } from '../common/process';

/** A signature over a few lines of text is under 1 KB; anything far larger is not one. */
const MAX_SIGNATURE_CHARS = 16_384;
const ARMOUR_BEGIN = '-----BEGIN SSH SIGNATURE-----';
const ARMOUR_END = '-----END SSH SIGNATURE-----';

/**
 * The signature as ssh-keygen wants it, from what an approver pasted: the armoured file, or only
 * its base64 body on one line (easier to put in JSON). Undefined when it is neither.
 */
export function armouredSignature(pasted: string): string | undefined {
  if (pasted.length > MAX_SIGNATURE_CHARS) return undefined;
  const body = pasted.replace(ARMOUR_BEGIN, '').replace(ARMOUR_END, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length < 64) return undefined;
  const lines = body.match(/.{1,70}/g) ?? [];
  return [ARMOUR_BEGIN, ...lines, ARMOUR_END, ''].join('\n');
}

/**
 * Verifies `signature` over `text` in the ballast-approval namespace. Returns the signer's
 * principal and key fingerprint, or a refusal that says why; throws only when ssh-keygen cannot run.
 */
export async function verifySignature(allowedSignersFile: string, text: string, signature: string): Promise<SignatureCheck> {
  const armoured = armouredSignature(signature);
  if (!armoured) return { ok: false, refusal: 'the signature is not an SSH signature (paste the .sig file, or the base64 between its BEGIN and END lines)' };
  const dir = await mkdtemp(path.join(tmpdir(), 'ballast-sig-'));
  try {
    const sigFile = path.join(dir, 'approval.sig');
    await writeFile(sigFile, armoured);
    const found = await runProcess('ssh-keygen', ['-Y', 'find-principals', '-s', sigFile, '-f', allowedSignersFile], { timeoutMs: 30_000 });
    const principals = found.exitCode === 0 ? found.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
    if (principals.length === 0) {
      const why = found.stderr.trim().split('\n').pop() ?? '';
      return { ok: false, refusal: `the signing key is not in the allowed-signers file ${allowedSignersFile}${why && !/No principal matched/i.test(why) ? ` (${why})` : ''}` };
    }
    const failures: string[] = [];
    for (const principal of principals) {
      const verified = await runProcess('ssh-keygen', ['-Y', 'verify', '-f', allowedSignersFile, '-I', principal, '-n', APPROVAL_NAMESPACE, '-s', sigFile], { input: text, timeoutMs: 30_000 });
      const good = /^Good "[^"]*" signature for (.+) with (\S+) key (SHA256:[A-Za-z0-9+/=]+)/m.exec(verified.stdout);
      if (verified.exitCode === 0 && good) return { ok: true, principal, keyFingerprint: good[3]! };
      failures.push(`${principal}: ${(verified.stderr || verified.stdout).trim().split('\n').pop() ?? `ssh-keygen exited ${verified.exitCode}`}`);
    }
    return { ok: false, refusal: `the signature does not match this text, or was not made for the ${APPROVAL_NAMESPACE} namespace (${failures.join('; ')})` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
