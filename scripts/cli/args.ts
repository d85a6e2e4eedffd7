/**
 * Command-line parsing: Node's util.parseArgs for the flags, then zod for their values, so each
 * error names the flag it is about (`--target: ...`).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { usageError } from './errors';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Flags every command takes. */
export const GLOBAL_OPTIONS = {
  output: { type: 'string', short: 'o', default: 'text' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

export function parseCommandLine(args: string[], options: OptionSpecs): { values: ParsedValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values as ParsedValues, positionals };
  } catch (err) {
    // parseArgs names the flag already ("Unknown option '--foo'"); its hints about "--" are noise here.
    throw usageError(((err as Error).message.split('. To specify')[0] ?? '').trim());
  }
}

/** "a,b" and repeated flags alike: `--components postgres,kafka --components clickhouse`. */
export function listOf(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const items = (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(','));
  return items.map((s) => s.trim()).filter(Boolean);
}

/** `--flag key=value` pairs, repeated. */
export function pairsOf(flag: string, value: unknown): [string, string][] | undefined {
  const items = value === undefined ? undefined : (Array.isArray(value) ? value : [value]).map(String);
  return items?.map((item) => {
    const at = item.indexOf('=');
    if (at <= 0) throw usageError(`--${flag} ${JSON.stringify(item)}: expected KEY=VALUE`);
    return [item.slice(0, at), item.slice(at + 1)];
  });
}

/** Validates with `schema`; each problem is named by the flag `flagOf` maps its path to. */
export function validate<T extends z.ZodType>(schema: T, value: unknown, flagOf: (path: PropertyKey[]) => string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.slice(1).map(String).join('.');
    return `${flagOf(issue.path)}${where ? ` (${where})` : ''}: ${issue.message}`;
  });
  throw usageError(problems.join('; '));
}
