import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { runProcess } from '../common/process';
import { Failure } from '../../contracts/failures';

export interface PgTool {
  path: string;
  major: number;
  version: string;
}

const described = new Map<string, Promise<PgTool | undefined>>();

/** Runs `<tool> --version` once per path and process: a backup of many databases asks often. */
function describeTool(file: string): Promise<PgTool | undefined> {
  let result = described.get(file);
  if (!result) {
    result = readVersion(file);
    described.set(file, result);
  }
  return result;
}

async function readVersion(file: string): Promise<PgTool | undefined> {
  try {
    const { stdout, failed } = await runProcess(file, ['--version']);
    if (failed) return undefined;
    const match = /\(PostgreSQL\)\s+((\d+)(?:\.\d+)*)/.exec(stdout);
    return match ? { path: file, version: match[1]!, major: Number(match[2]) } : undefined;
  } catch {
    // Not there, or not a program.
    return undefined;
  }
}

/** Debian/Ubuntu install each major version's tools side by side under /usr/lib/postgresql: newest first. */
function versionedPaths(tool: string): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort((a, b) => (Number(b) || 0) - (Number(a) || 0))
    .map((major) => path.join(root, major, 'bin', tool))
    .filter((p) => existsSync(p));
}

/**
 * A pg_dump / pg_restore whose major version is at least the server's: an older pg_dump refuses
 * a newer server, and a newer one still dumps older servers. Fails non-retryably, saying what to
 * install, when none fits: a retry would not find one either.
 *
 * The newest is asked first and the first that fits is taken: each candidate asked costs a
 * program start, and the one on the PATH (on Debian, a Perl wrapper around the newest) is asked
 * only when no versioned one fits.
 */
export async function findPgTool(tool: 'pg_dump' | 'pg_restore', serverMajor: number, configured?: string, needed = `the server's major version ${serverMajor}`): Promise<PgTool> {
  const found: PgTool[] = [];
  for (const file of configured ? [configured] : [...versionedPaths(tool), tool]) {
    const described = await describeTool(file);
    if (described && described.major >= serverMajor) return described;
    if (described) found.push(described);
  }
  const seen = found.length ? found.map((t) => `${t.path} (${t.version})`).join(', ') : 'none found';
  throw ApplicationFailure.nonRetryable(
    `${tool} must be at least ${needed}; available: ${seen}. ` +
      `Install postgresql-client-${serverMajor} or set ${tool === 'pg_dump' ? 'backup.pgDumpPath' : 'restore.pgRestorePath'}.`,
    Failure.PgToolTooOld,
  );
}
