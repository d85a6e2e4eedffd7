import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cacheRoot } from './paths';

/** A tool installed once per machine into the per-user cache, outside any checkout. */
export interface CachedTool {
  name: string;
  version: string;
  /** Fills an empty directory with the tool (downloads from a registry, builds), installing what the build needs. */
  build(dir: string, log: (line: string) => void): Promise<void>;
  /** Whether a directory holds a complete, working copy of the tool. */
  verify(dir: string): Promise<boolean>;
}

const MARKER = '.ballast-installed';

function toolDir(tool: CachedTool): string {
  return path.join(cacheRoot(), `${tool.name}-${tool.version}`);
}

/**
 * Returns the tool's cache directory, installing it first if needed. A directory without the
 * marker is either adopted (it verifies, e.g. filled by hand or by an older script) or rebuilt.
 * Builds happen in a staging directory renamed into place at the end, so an interrupted build
 * never looks complete and two concurrent installs cannot mix their files.
 */
export async function ensureTool(tool: CachedTool, log: (line: string) => void): Promise<string> {
  const dir = toolDir(tool);
  const marker = path.join(dir, MARKER);
  if (existsSync(marker)) return dir;
  if (existsSync(dir) && (await tool.verify(dir))) {
    writeFileSync(marker, `${new Date().toISOString()}\n`);
    log(`${tool.name} ${tool.version}: adopted the existing install in ${dir}`);
    return dir;
  }
  removeAbandonedStaging(dir);
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const started = Date.now();
  log(`${tool.name} ${tool.version}: installing into ${dir}`);
  try {
    await tool.build(staging, log);
    if (!(await tool.verify(staging))) throw new Error(`${tool.name} ${tool.version} installed but does not verify`);
    writeFileSync(path.join(staging, MARKER), `${new Date().toISOString()}\n`);
    if (existsSync(marker)) {
      // A concurrent install finished first; keep its copy.
      rmSync(staging, { recursive: true, force: true });
    } else {
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  log(`${tool.name} ${tool.version}: installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return dir;
}

/** Staging directories of installs whose process died (killed CI job, ^C) are only clutter. */
function removeAbandonedStaging(dir: string): void {
  const parent = path.dirname(dir);
  const prefix = `${path.basename(dir)}.partial-`;
  if (!existsSync(parent)) return;
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length));
    if (!processExists(pid)) rmSync(path.join(parent, entry), { recursive: true, force: true });
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
