import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { loadConfig, type LoadedConfig } from '../workers/config';
import { stackDir } from '../localStack/paths';

const repoRoot = path.resolve(__dirname, '..');

/**
 * Writes a variant of the local stack's ballast.yaml under .stack/derived-configs/ (for tests and
 * benchmarks that need their own task queue, schedule id or inventory) and loads it. Secret file
 * paths are made absolute, since the copy lives in another folder.
 */
export function writeDerivedConfig(name: string, change: (raw: Record<string, any>) => void): LoadedConfig {
  const raw = parse(readFileSync(path.join(repoRoot, 'ballast.yaml'), 'utf8')) as Record<string, any>;
  change(raw);
  for (const section of Object.values(raw)) {
    if (!section || typeof section !== 'object') continue;
    for (const value of Object.values(section)) {
      if (value && typeof value === 'object' && 'file' in value) {
        (value as { file: string }).file = path.resolve(repoRoot, (value as { file: string }).file);
      }
    }
  }
  const dir = path.join(stackDir, 'derived-configs');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(raw));
  return loadConfig(file);
}
