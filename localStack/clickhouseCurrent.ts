import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { clickhouseHttpClient, ensureClickHouseDatabases } from './clickhouse';
import { ensureTool, type CachedTool } from './cachedTools';
import { runCommand, runLogged } from './commands';
import { ensureDebianPackages } from './debianPackages';
import { StackError } from './errors';
import { healthTimeoutMs, portOpen, processStatus, waitHealthy } from './health';
import { displayPath, logFile, serviceDir } from './paths';
import type { StackPorts } from './ports';
import { runningPid, spawnService, stopProcess } from './processes';
import type { StackContext, StackService } from './service';

const NAME = 'clickhouse-current';
/** Pinned exactly: the server mode chdbServer.py relies on is not a documented chdb feature. */
const CHDB_VERSION = '26.9.0';
/** chdb-core's version is the ClickHouse release it embeds (26.9.0 ships 26.9.2.1). */
const ENGINE_PREFIX = `${CHDB_VERSION.split('.').slice(0, 2).join('.')}.`;

const dir = serviceDir(NAME);
const dataDir = path.join(dir, 'data');
const configFile = path.join(dir, 'config.xml');
const usersFile = path.join(dir, 'users.xml');
const launcher = path.join(__dirname, 'chdbServer.py');

type Ports = NonNullable<StackPorts['clickhouseCurrent']>;

function python(venv: string): string {
  return path.join(venv, 'bin', 'python');
}

/**
 * A virtualenv holding chdb-core alone. Its declared dependencies (pandas, pyarrow, unpinned)
 * serve chdb's DataFrame and Arrow results, which the server never produces: importing chdb
 * does not load them, so they are left out.
 */
const chdbCore: CachedTool = {
  name: 'chdb-core',
  version: CHDB_VERSION,
  build: async (venv, log) => {
    await ensureDebianPackages([{ provides: 'python3', package: 'python3-venv' }], log);
    const installLog = logFile('install-chdb-core');
    await runLogged('python3', ['-m', 'venv', venv], installLog);
    log(`chdb-core ${CHDB_VERSION}: downloading the wheel (about 180 MB)`);
    await runLogged(
      python(venv),
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--no-deps', `chdb-core==${CHDB_VERSION}`],
      installLog,
      { timeoutMs: 30 * 60_000 },
    );
  },
  // Importing chdb starts its engine once, so a wheel that cannot run here fails now, not at start.
  verify: async (venv) => {
    try {
      const version = await runCommand(python(venv), ['-c', 'import chdb; print(chdb.__version__)'], { cwd: venv });
      return version.trim() === CHDB_VERSION;
    } catch {
      return false;
    }
  },
};

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function userXml(name: string, passwordElement: string, grants?: string[]): string {
  // Without a <grants> element a user from users.xml may do anything.
  const grantsElement = grants ? `\n            <grants>${grants.map((g) => `<query>${g}</query>`).join('')}</grants>` : '';
  return `        <${name}>
            ${passwordElement}
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>${grantsElement}
        </${name}>`;
}

/**
 * chdb runs the query that keeps the listeners up as `default` with an empty password (hard-coded
 * in its embedded session, which counts as a loopback client, so no <networks> rule can keep
 * local clients out of `default` either). So `default` stays passwordless: it is the config's user
 * when the config names no password, and otherwise a user that may only start and stop listeners.
 */
function usersXml(ctx: StackContext): string {
  const { user } = ctx.loaded.config.clickhouse;
  const password = ctx.secrets.clickhousePassword;
  if (user === 'default' && password !== undefined) {
    throw new StackError(
      `${NAME}: chdb runs its own server query as user 'default' with no password, so that user cannot have one here: ` +
        `give clickhouse.user another name in ${displayPath(ctx.loaded.path)}, or remove stack.clickhouseCurrent`,
    );
  }
  const passwordElement =
    password === undefined
      ? '<password></password>'
      : `<password_sha256_hex>${createHash('sha256').update(password).digest('hex')}</password_sha256_hex>`;
  const users = [userXml(user, passwordElement)];
  if (user !== 'default') users.push(userXml('default', '<password></password>', ['GRANT SYSTEM LISTEN ON *.*']));
  return `<?xml version="1.0"?>
<!-- Written by scripts/stack on each start. -->
<clickhouse>
    <profiles>
        <default></default>
    </profiles>
    <users>
${users.join('\n')}
    </users>
    <quotas>
        <default></default>
    </quotas>
</clickhouse>
`;
}

/** `clickhouse local` reads config.xml from its working directory; the data path comes from chdbServer.py. */
function writeConfig(ctx: StackContext, ports: Ports): void {
  const users = usersXml(ctx);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    configFile,
    `<?xml version="1.0"?>
<!-- Written by scripts/stack on each start. -->
<clickhouse>
    <!-- clickhouse local takes the level from log-level and ignores logger.level. -->
    <log-level>warning</log-level>
    <logger>
        <console>1</console>
    </logger>
    <listen_host>${xmlEscape(ports.host)}</listen_host>
    <http_port>${ports.httpPort}</http_port>
    <tcp_port>${ports.nativePort}</tcp_port>
    <users_config>${xmlEscape(usersFile)}</users_config>
</clickhouse>
`,
  );
  writeFileSync(usersFile, users, { mode: 0o600 });
}

const httpUrl = (ports: Ports) => `http://${ports.host}:${ports.httpPort}`;

/** A real query over HTTP, answered by the pinned engine and no other, plus the native port. Returns the version. */
async function checkHealth(ctx: StackContext, ports: Ports): Promise<string> {
  const client = clickhouseHttpClient(ctx, httpUrl(ports));
  let version: string | undefined;
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    version = (await result.json<{ version: string }>())[0]?.version;
  } finally {
    await client.close();
  }
  if (!version?.startsWith(ENGINE_PREFIX)) {
    throw new Error(`port ${ports.httpPort} answered ClickHouse ${version}, not the ${ENGINE_PREFIX}x that chdb-core ${CHDB_VERSION} embeds`);
  }
  await portOpen(ports.host, ports.nativePort, healthTimeoutMs(ctx));
  return version;
}

/** A current ClickHouse engine beside the Debian 18.16 server, with the clickhouse section's user and databases. */
export const clickhouseCurrent: StackService = {
  name: NAME,

  async install(ctx) {
    if (ctx.ports.clickhouseCurrent) await ensureTool(chdbCore, ctx.log);
  },

  async start(ctx) {
    const ports = ctx.ports.clickhouseCurrent;
    if (!ports) {
      ctx.log(`${NAME}: not run (no stack.clickhouseCurrent in ${displayPath(ctx.loaded.path)})`);
      return;
    }
    const venv = await ensureTool(chdbCore, ctx.log);
    if (runningPid(NAME) === undefined) {
      writeConfig(ctx, ports);
      const password = ctx.secrets.clickhousePassword;
      ctx.log(`${NAME}: starting chdb-core ${CHDB_VERSION} on ${ports.host}:${ports.httpPort} (native ${ports.nativePort})`);
      await spawnService({
        name: NAME,
        command: python(venv),
        args: [
          '-u', launcher,
          '--data-dir', dataDir,
          '--expect-version', CHDB_VERSION,
          '--host', ports.host,
          '--http-port', String(ports.httpPort),
          '--native-port', String(ports.nativePort),
          '--user', ctx.loaded.config.clickhouse.user,
        ],
        // Not on the command line, which every local user can read.
        env: password === undefined ? process.env : { ...process.env, CHDB_SERVER_PASSWORD: password },
        cwd: dir,
      });
    }
    try {
      await waitHealthy({
        service: NAME,
        processes: [NAME],
        timeoutMs: 30_000,
        check: async () => {
          await checkHealth(ctx, ports);
          await ensureClickHouseDatabases(ctx, httpUrl(ports));
        },
      });
    } catch (err) {
      throw new StackError(
        `${NAME}: the server mode of chdb-core ${CHDB_VERSION}, not a documented chdb feature, did not come up: ${(err as Error).message}`,
      );
    }
  },

  async stop() {
    await stopProcess(NAME, 'SIGTERM', 30_000);
  },

  async status(ctx) {
    const ports = ctx.ports.clickhouseCurrent;
    if (!ports) return [];
    let version = '';
    const line = await processStatus(ctx, { name: NAME, port: ports.httpPort, ports: { native: ports.nativePort } }, NAME, async () => {
      version = await checkHealth(ctx, ports);
    });
    return [line.state === 'up' ? { ...line, detail: `ClickHouse ${version} (chdb-core ${CHDB_VERSION})` } : line];
  },
};
