import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { runLogged } from './commands';
import { ensureDebianPackages } from './debianPackages';
import { healthTimeoutMs, processStatus, waitHealthy } from './health';
import { logFile, serviceDir } from './paths';
import { runningPid, spawnService, stopProcess, systemUser } from './processes';
import type { StackContext, StackService } from './service';

const PG_BIN = '/usr/lib/postgresql/15/bin';
/** initdb's superuser, reached only over the unix socket; the config's user is the one clients use. */
const BOOTSTRAP_USER = 'postgres';

const dir = serviceDir('postgres');
const dataDir = path.join(dir, 'data');
const socketDir = path.join(dir, 'run');
const hbaFile = path.join(dir, 'pg_hba.conf');
const identFile = path.join(dir, 'pg_ident.conf');

/** initdb and postgres refuse to run as root; as anyone else they run as that user. */
function serverAccount(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? systemUser('postgres') : undefined;
}

function ownedByServer(directory: string): void {
  mkdirSync(path.dirname(directory), { recursive: true });
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const account = serverAccount();
  if (account) {
    chownSync(directory, account.uid, account.gid);
    reachableByOthers(path.dirname(directory));
  }
}

/**
 * The server's account must be able to pass through every folder above its own. A checkout in a
 * private folder (mktemp -d makes them 0700) would stop it, so each ancestor gets the search bit
 * for others, which lets a process through without letting it list or read anything.
 */
function reachableByOthers(directory: string): void {
  for (let dir = directory; ; dir = path.dirname(dir)) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
    if (dir === path.dirname(dir)) return;
  }
}

/** initdb runs into a side directory, renamed into place only once it succeeded, so a half-made cluster is never started. */
async function ensureCluster(): Promise<void> {
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) return;
  const staging = `${dataDir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  ownedByServer(staging);
  await runLogged(
    path.join(PG_BIN, 'initdb'),
    ['-D', staging, '-U', BOOTSTRAP_USER, '--auth-local=peer', '--auth-host=scram-sha-256', '--encoding=UTF8', '--no-locale'],
    logFile('postgres'),
    { ...serverAccount(), cwd: '/' },
  );
  rmSync(dataDir, { recursive: true, force: true });
  renameSync(staging, dataDir);
}

/**
 * Access rules, rewritten on each start and kept outside the data directory: the OS user running
 * the stack may act as the bootstrap superuser over the socket (to create the config's user),
 * and every TCP client must authenticate with a password.
 */
function writeAccessRules(): void {
  writeFileSync(
    hbaFile,
    [
      '# Written by scripts/stack on each start.',
      `local all ${BOOTSTRAP_USER} peer map=stack`,
      'host all all 127.0.0.1/32 scram-sha-256',
      'host all all ::1/128 scram-sha-256',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  writeFileSync(
    identFile,
    [`stack ${os.userInfo().username} ${BOOTSTRAP_USER}`, `stack ${BOOTSTRAP_USER} ${BOOTSTRAP_USER}`, ''].join('\n'),
    { mode: 0o644 },
  );
}

/** Creates (or re-passwords, should the secret file have changed) the config's user, and its databases. */
async function ensureUserAndDatabases(ctx: StackContext): Promise<void> {
  const { port, user, databases } = ctx.loaded.config.postgres;
  const admin = new Client({
    host: socketDir,
    port,
    user: BOOTSTRAP_USER,
    database: 'postgres',
    connectionTimeoutMillis: healthTimeoutMs(ctx),
  });
  await admin.connect();
  try {
    const role = admin.escapeIdentifier(user);
    const roleExists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [user])).rowCount !== 0;
    await admin.query(
      `${roleExists ? 'ALTER' : 'CREATE'} ROLE ${role} WITH LOGIN SUPERUSER PASSWORD ${admin.escapeLiteral(ctx.secrets.postgresPassword)}`,
    );
    for (const database of databases) {
      const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database])).rowCount !== 0;
      if (!exists) {
        ctx.log(`postgres: creating database ${database}`);
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)} OWNER ${role}`);
      }
    }
  } finally {
    await admin.end();
  }
}

/** What a client of the platform does: password login over TCP as the config's user. */
async function checkHealth(ctx: StackContext): Promise<void> {
  const { host, port, user, maintenanceDatabase } = ctx.loaded.config.postgres;
  const client = new Client({
    host,
    port,
    user,
    password: ctx.secrets.postgresPassword,
    database: maintenanceDatabase,
    connectionTimeoutMillis: healthTimeoutMs(ctx),
  });
  await client.connect();
  try {
    await client.query('SELECT 1');
  } finally {
    await client.end();
  }
}

export const postgres: StackService = {
  name: 'postgres',

  async install(ctx) {
    await ensureDebianPackages([{ provides: path.join(PG_BIN, 'postgres'), package: 'postgresql-15' }], ctx.log);
  },

  async start(ctx) {
    await this.install(ctx);
    const { host, port } = ctx.ports.postgres;
    if (runningPid('postgres') === undefined) {
      await ensureCluster();
      ownedByServer(socketDir);
      writeAccessRules();
      ctx.log(`postgres: starting on ${host}:${port}`);
      await spawnService({
        name: 'postgres',
        command: path.join(PG_BIN, 'postgres'),
        args: [
          '-D', dataDir,
          '-c', `listen_addresses=${host}`,
          '-c', `port=${port}`,
          '-c', `unix_socket_directories=${socketDir}`,
          '-c', `hba_file=${hbaFile}`,
          '-c', `ident_file=${identFile}`,
        ],
        runAs: serverAccount(),
        cwd: '/',
      });
    }
    await waitHealthy({
      service: 'postgres',
      processes: ['postgres'],
      timeoutMs: 60_000,
      check: async () => {
        await ensureUserAndDatabases(ctx);
        await checkHealth(ctx);
      },
    });
  },

  async stop() {
    // SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    await stopProcess('postgres', 'SIGINT', 60_000);
  },

  async status(ctx) {
    const { port } = ctx.ports.postgres;
    return [await processStatus(ctx, { name: 'postgres', port, ports: {} }, 'postgres', () => checkHealth(ctx))];
  },
};
