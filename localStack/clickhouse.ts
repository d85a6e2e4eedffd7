import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { ensureDebianPackages } from './debianPackages';
import { healthTimeoutMs, portOpen, processStatus, waitHealthy } from './health';
import { serviceDir } from './paths';
import { runningPid, spawnService, stopProcess } from './processes';
import type { StackContext, StackService } from './service';

const SERVER = '/usr/sbin/clickhouse-server';

const dir = serviceDir('clickhouse');
const dataDir = path.join(dir, 'data');
const configFile = path.join(dir, 'config.xml');
const usersFile = path.join(dir, 'users.xml');

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Debian ships ClickHouse 18.16, whose config format differs from today's: the root element is
 * <yandex>, paths need a trailing slash, and the users live in a separate users.xml. The logger
 * writes to the console, which the stack sends to .stack/logs/clickhouse.log like every service.
 */
function writeConfig(ctx: StackContext): void {
  const { host, httpPort, nativePort } = ctx.ports.clickhouse;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(
    configFile,
    `<?xml version="1.0"?>
<!-- Written by scripts/stack on each start. -->
<yandex>
    <logger>
        <level>information</level>
        <console>1</console>
    </logger>
    <http_port>${httpPort}</http_port>
    <tcp_port>${nativePort}</tcp_port>
    <listen_host>${xmlEscape(host)}</listen_host>
    <path>${xmlEscape(dataDir)}/</path>
    <tmp_path>${xmlEscape(dataDir)}/tmp/</tmp_path>
    <user_files_path>${xmlEscape(dataDir)}/user_files/</user_files_path>
    <format_schema_path>${xmlEscape(dataDir)}/format_schemas/</format_schema_path>
    <users_config>${xmlEscape(usersFile)}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <!-- 18.16 refuses to start without it. -->
    <mark_cache_size>536870912</mark_cache_size>
</yandex>
`,
  );
  const password = ctx.secrets.clickhousePassword;
  const passwordElement =
    password === undefined
      ? '<password></password>'
      : `<password_sha256_hex>${createHash('sha256').update(password).digest('hex')}</password_sha256_hex>`;
  const user = ctx.loaded.config.clickhouse.user;
  writeFileSync(
    usersFile,
    `<?xml version="1.0"?>
<!-- Written by scripts/stack on each start. -->
<yandex>
    <profiles>
        <default></default>
    </profiles>
    <users>
        <${user}>
            ${passwordElement}
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </${user}>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`,
    { mode: 0o600 },
  );
}

/** An HTTP client of a stack ClickHouse (either release) as the clickhouse section's user. */
export function clickhouseHttpClient(ctx: StackContext, url = ctx.loaded.config.clickhouse.url) {
  return createClient({
    url,
    username: ctx.loaded.config.clickhouse.user,
    password: ctx.secrets.clickhousePassword ?? '',
    request_timeout: healthTimeoutMs(ctx),
    // Refused connections while the server starts are expected; the health wait reports the last one.
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/** A real query over HTTP (what the activities use) plus the native port clickhouse-client needs. */
async function checkHealth(ctx: StackContext): Promise<void> {
  const client = clickhouseHttpClient(ctx);
  try {
    const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
    await result.json();
  } finally {
    await client.close();
  }
  const { host, nativePort } = ctx.ports.clickhouse;
  await portOpen(host, nativePort, healthTimeoutMs(ctx));
}

/** Creates the clickhouse section's databases on a stack ClickHouse (either release). */
export async function ensureClickHouseDatabases(ctx: StackContext, url?: string): Promise<void> {
  const client = clickhouseHttpClient(ctx, url);
  try {
    // Names are validated as plain identifiers by the config schema.
    for (const { name } of ctx.loaded.config.clickhouse.databases) {
      await client.command({ query: `CREATE DATABASE IF NOT EXISTS \`${name}\`` });
    }
  } finally {
    await client.close();
  }
}

export const clickhouse: StackService = {
  name: 'clickhouse',

  async install(ctx) {
    await ensureDebianPackages(
      [
        { provides: SERVER, package: 'clickhouse-server' },
        { provides: 'clickhouse-client', package: 'clickhouse-client' },
      ],
      ctx.log,
    );
  },

  async start(ctx) {
    await this.install(ctx);
    const { host, httpPort, nativePort } = ctx.ports.clickhouse;
    if (runningPid('clickhouse') === undefined) {
      writeConfig(ctx);
      ctx.log(`clickhouse: starting on ${host}:${httpPort} (native ${nativePort})`);
      await spawnService({ name: 'clickhouse', command: SERVER, args: [`--config-file=${configFile}`] });
    }
    await waitHealthy({
      service: 'clickhouse',
      processes: ['clickhouse'],
      timeoutMs: 60_000,
      check: async () => {
        await checkHealth(ctx);
        await ensureClickHouseDatabases(ctx);
      },
    });
  },

  async stop() {
    await stopProcess('clickhouse', 'SIGTERM', 30_000);
  },

  async status(ctx) {
    const { httpPort, nativePort } = ctx.ports.clickhouse;
    return [
      await processStatus(ctx, { name: 'clickhouse', port: httpPort, ports: { native: nativePort } }, 'clickhouse', () =>
        checkHealth(ctx),
      ),
    ];
  },
};
