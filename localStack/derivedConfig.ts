import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { z } from 'zod';
import type { configSchema } from '../contracts/config';
import { loadConfig, type LoadedConfig } from '../workers/config';
import { repoRoot, stackDir } from './paths';

/** ballast.yaml as written, before defaults. */
export type RawConfig = z.input<typeof configSchema>;

/**
 * Writes a variant of the local stack's ballast.yaml under .stack/derived-configs/ (for tests and
 * benchmarks that need their own task queue, schedule id or inventory) and loads it. Secret file
 * and allowed-signers paths are made absolute, since the copy lives in another folder.
 */
export function writeDerivedConfig(name: string, change: (raw: RawConfig) => void): LoadedConfig {
  const raw = parse(readFileSync(path.join(repoRoot, 'ballast.yaml'), 'utf8')) as RawConfig;
  // Tests and the bench run several workers beside `npm start`'s: one metrics port each would
  // collide, so a derived config serves metrics only where its change asks for them.
  delete raw.metrics;
  change(raw);
  const absolute = (value: unknown) => {
    if (value && typeof value === 'object' && 'file' in value) {
      (value as { file: string }).file = path.resolve(repoRoot, (value as { file: string }).file);
    }
  };
  for (const section of Object.values(raw) as unknown[]) {
    if (!section || typeof section !== 'object') continue;
    // A secret is a section's field, or an entry of a list of them (backup.previousManifestKeys).
    for (const value of Object.values(section)) (Array.isArray(value) ? value : [value]).forEach(absolute);
  }
  if (raw.approvals?.allowedSignersFile) raw.approvals.allowedSignersFile = path.resolve(repoRoot, raw.approvals.allowedSignersFile);
  const dir = path.join(stackDir, 'derived-configs');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(raw));
  return loadConfig(file);
}
