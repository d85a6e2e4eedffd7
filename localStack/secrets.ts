import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSecret, type LoadedConfig, type SecretRef } from '../workers/config';
import { StackError } from './errors';

export interface StackSecrets {
  postgresPassword: string;
  minioRootUser: string;
  minioRootPassword: string;
  /** Unset when the config gives ClickHouse no password (the local default). */
  clickhousePassword?: string;
  /** The worker's (backup.manifestKey): no service uses it, but the stack's worker signs with it. */
  manifestKey: string;
}

/** MinIO access keys are conventionally upper-case alphanumerics; anything longer than 3 is accepted. */
function accessKey(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from(randomBytes(20), (b) => alphabet[b % alphabet.length]).join('');
}

function password(): string {
  return randomBytes(24).toString('base64url');
}

/** 32 random bytes in hex: an HMAC-SHA256 key as long as its output. */
function hmacKey(): string {
  return randomBytes(32).toString('hex');
}

/**
 * The stack owns the secret files its config points at: it creates each one once (random, mode
 * 0600) and reuses it afterwards, so the services and the worker agree on the same values.
 * Secrets named by environment variable are the caller's to provide.
 */
function ensureSecret(ref: SecretRef | undefined, field: string, loaded: LoadedConfig, generate: () => string): string {
  if (!ref) throw new StackError(`${field} must be set in ${loaded.path} for the local stack`);
  if ('file' in ref) {
    const file = path.resolve(path.dirname(loaded.path), ref.file);
    if (!existsSync(file)) {
      // Only the secrets' own folder is private: its parents (.stack/) must stay traversable for
      // services that run as other users (postgres).
      mkdirSync(path.dirname(path.dirname(file)), { recursive: true });
      mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      try {
        writeFileSync(file, `${generate()}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        // Another start created it at the same moment: theirs is the one to use.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }
  return readSecret(ref, loaded.path);
}

export function stackSecrets(loaded: LoadedConfig): StackSecrets {
  const { postgres, objectStore, clickhouse, backup } = loaded.config;
  return {
    postgresPassword: ensureSecret(postgres.password, 'postgres.password', loaded, password),
    minioRootUser: ensureSecret(objectStore.accessKeyId, 'objectStore.accessKeyId', loaded, accessKey),
    minioRootPassword: ensureSecret(objectStore.secretAccessKey, 'objectStore.secretAccessKey', loaded, password),
    clickhousePassword: clickhouse.password
      ? ensureSecret(clickhouse.password, 'clickhouse.password', loaded, password)
      : undefined,
    manifestKey: ensureSecret(backup.manifestKey, 'backup.manifestKey', loaded, hmacKey),
  };
}
