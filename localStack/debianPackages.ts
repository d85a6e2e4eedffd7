import { existsSync } from 'node:fs';
import { hasProgram, runLogged } from './commands';
import { StackError } from './errors';
import { logFile } from './paths';

/** Something the stack needs from Debian: the file or program that proves it is there, and the package that provides it. */
export interface DebianRequirement {
  /** An absolute path, or a program name looked up on PATH. */
  provides: string;
  package: string;
}

async function present(requirement: DebianRequirement): Promise<boolean> {
  return requirement.provides.startsWith('/') ? existsSync(requirement.provides) : hasProgram(requirement.provides);
}

let listsRefreshed = false;

/**
 * Installs the missing packages with apt-get. The package lists are refreshed only when something
 * is actually missing, and at most once per run.
 */
export async function ensureDebianPackages(requirements: DebianRequirement[], log: (line: string) => void): Promise<void> {
  const missing: DebianRequirement[] = [];
  for (const r of requirements) if (!(await present(r))) missing.push(r);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((r) => r.package))];
  if (process.getuid?.() !== 0) {
    throw new StackError(`missing Debian packages: run 'sudo apt-get install ${packages.join(' ')}' (or run the stack as root)`);
  }
  const aptLog = logFile('apt');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`apt: installing ${packages.join(' ')}`);
  if (!listsRefreshed) {
    await runLogged('apt-get', ['update'], aptLog, { env });
    listsRefreshed = true;
  }
  await runLogged('apt-get', ['install', '-y', '--no-install-recommends', ...packages], aptLog, { env });
  for (const r of missing) {
    if (!(await present(r))) throw new StackError(`apt installed ${r.package} but ${r.provides} is still missing`);
  }
}
