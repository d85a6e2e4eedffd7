import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config, type SecretRef } from '../contracts/config';

export type { Config, SecretRef } from '../contracts/config';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)';
  return `${where}: ${issue.message}`;
}

/** Validates an already-parsed config object; `source` names it in errors. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(source, result.error.issues.map(describeIssue));
  }
  return result.data;
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file it came from; relative secret file paths resolve against its folder. */
  path: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.BALLAST_CONFIG ?? 'ballast.yaml');
}

export function loadConfig(file: string = configPath()): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message} (set BALLAST_CONFIG to its path)`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
  }
  const config = parseConfig(raw, file);
  const signers = config.approvals.allowedSignersFile;
  if (signers !== undefined) {
    config.approvals.allowedSignersFile = path.resolve(path.dirname(file), signers);
    const problem = allowedSignersProblem(config.approvals.allowedSignersFile);
    if (problem) throw new ConfigError(file, [`approvals.allowedSignersFile: ${problem}`]);
  }
  return { config, path: path.resolve(file) };
}

/**
 * Why an allowed-signers file cannot serve, or undefined. Read again at every verification (a
 * key added or removed counts at once); checked here so a wrong path fails at start, not at 3 a.m.
 */
export function allowedSignersProblem(file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  const entries = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (entries.length === 0) return `${file} lists no key: add a line "<principal> <key type> <base64 key>" per approver`;
  const bad = entries.findIndex((l) => !/\b(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*/.test(l));
  if (bad >= 0) return `${file}: entry ${bad + 1} is not "<principal> [options] <key type> <base64 key>": ${entries[bad]!.slice(0, 80)}`;
  return undefined;
}

/** Reads a secret at the worker. Throws naming the reference when it is missing. */
export function readSecret(ref: SecretRef, configFile: string, env: NodeJS.ProcessEnv = process.env): string {
  if ('env' in ref) {
    const value = env[ref.env];
    if (value === undefined || value === '') {
      throw new ConfigError(configFile, [`secret: environment variable ${ref.env} is not set`]);
    }
    return value;
  }
  const file = path.resolve(path.dirname(configFile), ref.file);
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(configFile, [`secret: cannot read file ${file}: ${(err as Error).message}`]);
  }
}
