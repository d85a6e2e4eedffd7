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

/** Debian/Ubuntu install each major version's tools side by side under /usr/lib/postgresql. */
function candidatePaths(tool: string): string[] {
  const root = '/usr/lib/postgresql';
  const versioned = existsSync(root)
    ? readdirSync(root).map((major) => path.join(root, major, 'bin', tool)).filter((p) => existsSync(p))
    : [];
  return [...versioned, tool];
}

/**
 * A pg_dump / pg_restore whose major version is at least the server's: an older pg_dump refuses
 * a newer server, and a newer one still dumps older servers. Fails non-retryably, saying what to
 * install, when none fits: a retry would not find one either.
 */
export async function findPgTool(tool: 'pg_dump' | 'pg_restore', serverMajor: number, configured?: string, needed = `the server's major version ${serverMajor}`): Promise<PgTool> {
  const found = (await Promise.all((configured ? [configured] : candidatePaths(tool)).map(describeTool))).filter(
    (t): t is PgTool => t !== undefined,
  );
  const fitting = found.filter((t) => t.major >= serverMajor).sort((a, b) => b.major - a.major);
  if (fitting[0]) return fitting[0];
  const seen = found.length ? found.map((t) => `${t.path} (${t.version})`).join(', ') : 'none found';
  throw ApplicationFailure.nonRetryable(
    `${tool} must be at least ${needed}; available: ${seen}. ` +
      `Install postgresql-client-${serverMajor} or set ${tool === 'pg_dump' ? 'backup.pgDumpPath' : 'restore.pgRestorePath'}.`,
    Failure.PgToolTooOld,
  );
}
