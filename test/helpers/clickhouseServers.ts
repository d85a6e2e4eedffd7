import { strict as assert } from 'node:assert';
import type { ClickHouseClient } from '@clickhouse/client';
import { writeDerivedConfig } from '../../localStack/derivedConfig';
import { loadConfig, type LoadedConfig } from '../../workers/config';

/**
 * The two ClickHouse releases the local stack runs, for tests that must pass on both: Debian's
 * 18.16 server at the clickhouse section's address, and the current engine (chdb-core 26.9) at
 * stack.clickhouseCurrent. Each entry names its release, as the test names do, and what the
 * release does differently where tests look.
 */
export interface ClickHouseServer {
  version: '18.16' | '26.9';
  /** The stack's config with ballast pointed at this server. */
  load(): LoadedConfig;
  /** The block compression `compress=1` answers with: LZ4 on 18.16, ZSTD by default since. */
  compression: 'lz4' | 'zstd';
}

export function clickhouseServers(): ClickHouseServer[] {
  const { config } = loadConfig();
  const current = config.stack?.clickhouseCurrent;
  assert.ok(current, 'ballast.yaml has no stack.clickhouseCurrent: every ClickHouse test runs on both releases');
  const host = new URL(config.clickhouse.url).hostname;
  return [
    { version: '18.16', load: () => loadConfig(), compression: 'lz4' },
    {
      version: '26.9',
      load: () =>
        writeDerivedConfig('clickhouse-26.9', (raw) => {
          raw.clickhouse = { ...raw.clickhouse!, url: `http://${host}:${current.httpPort}`, nativePort: current.nativePort };
        }),
      compression: 'zstd',
    },
  ];
}

/** Fails unless the server behind `client` runs `server`'s release: a mislabelled test proves nothing. */
export async function assertServerVersion(client: ClickHouseClient, server: ClickHouseServer): Promise<void> {
  const [row] = await (await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' })).json<{ version: string }>();
  assert.ok(row?.version.startsWith(`${server.version}.`), `expected ClickHouse ${server.version}, the server says ${row?.version}`);
}
