/**
 * The manifest's signature: an HMAC-SHA256, with the worker's backup.manifestKey, over the
 * manifest's canonical JSON without its `signature` field. Whoever can write to the backup bucket
 * but does not hold the key cannot change a single field, add or drop a piece, or pass one
 * backup's manifest off as another's without the check failing. Pure: unit-tested.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { canonicalJson } from '../../contracts/approvalTypes';
import type { ManifestSignature } from '../../contracts/backupTypes';

export const MANIFEST_SIGNATURE_ALGORITHM = 'HMAC-SHA256';

/** Bound into every MAC, so the key's MAC over anything else never passes for a manifest's. */
const DOMAIN = 'ballast manifest v1\n';

/** What names a key in a signature: the first 8 hex digits of sha256(key). */
export function manifestKeyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function mac(key: string, unsigned: object): Buffer {
  return createHmac('sha256', key).update(DOMAIN + canonicalJson(unsigned)).digest();
}

function withoutSignature(manifest: object): object {
  const { signature: _signature, ...rest } = manifest as { signature?: unknown };
  return rest;
}

/** The manifest with its signature by `key` (any earlier signature replaced). */
export function signManifest<T extends object>(manifest: T, key: string): Omit<T, 'signature'> & { signature: ManifestSignature } {
  const unsigned = withoutSignature(manifest) as Omit<T, 'signature'>;
  return {
    ...unsigned,
    signature: { algorithm: MANIFEST_SIGNATURE_ALGORITHM, keyId: manifestKeyId(key), value: mac(key, unsigned).toString('hex') },
  };
}

export type ManifestAuthenticity =
  | { kind: 'signed'; keyId: string }
  | { kind: 'unsigned' }
  | { kind: 'refused'; problem: string };

/**
 * Whether a manifest, as parsed from manifest.json, was signed by one of `keys`. A manifest with
 * no `signature` field is unsigned (older backups, or a worker without a key); whether that is
 * acceptable is the caller's decision. Anything else that does not verify is refused, naming why.
 */
export function manifestAuthenticity(raw: unknown, keys: readonly string[]): ManifestAuthenticity {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { kind: 'refused', problem: 'it is not a JSON object' };
  if (!('signature' in raw)) return { kind: 'unsigned' };
  const signature = (raw as { signature: unknown }).signature;
  if (signature === null || typeof signature !== 'object') return { kind: 'refused', problem: 'its signature field is not a signature object' };
  const { algorithm, keyId, value } = signature as Partial<Record<keyof ManifestSignature, unknown>>;
  if (algorithm !== MANIFEST_SIGNATURE_ALGORITHM) {
    return { kind: 'refused', problem: `it is signed with ${JSON.stringify(algorithm)}; only ${MANIFEST_SIGNATURE_ALGORITHM} is accepted` };
  }
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) return { kind: 'refused', problem: 'its signature value is not 64 hex digits' };
  const named = typeof keyId === 'string' ? keyId : '(none)';
  if (keys.length === 0) {
    return { kind: 'refused', problem: `it is signed (key id ${named}), but this worker has no backup.manifestKey to check the signature with` };
  }
  const claimed = Buffer.from(value, 'hex');
  const unsigned = withoutSignature(raw);
  for (const key of keys) {
    if (timingSafeEqual(mac(key, unsigned), claimed)) return { kind: 'signed', keyId: manifestKeyId(key) };
  }
  // The key id is not covered by the MAC: it only tells the likely cause apart for the message.
  const held = keys.map(manifestKeyId);
  if (held.includes(named)) {
    return { kind: 'refused', problem: `its signature (key id ${named}) does not match its content: the manifest was changed after it was signed` };
  }
  return { kind: 'refused', problem: `it is signed with another key (key id ${named}; this worker holds key id(s) ${held.join(', ')}): set backup.previousManifestKeys if the key was rotated` };
}
