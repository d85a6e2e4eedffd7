import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stackSecrets } from '../../localStack/secrets';
import { ConfigError, parseConfig, type LoadedConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';

const minimal = {
  environment: 'demo',
  postgres: { user: 'ballast', databases: ['shop'], password: { file: 'secrets/postgres-password' } },
  clickhouse: { url: 'http://127.0.0.1:8123', databases: [{ name: 'analytics' }] },
  kafka: { brokers: [{ id: 1, host: '127.0.0.1', port: 9092 }] },
  objectStore: { backupBucket: 'ballast-backups', accessKeyId: { file: 'secrets/access' }, secretAccessKey: { file: 'secrets/secret' } },
};

function configIn(dir: string, backup: Record<string, unknown>): LoadedConfig {
  return { config: parseConfig({ ...minimal, backup }), path: path.join(dir, 'ballast.yaml') };
}

describe('manifest keys', () => {
  it('the local stack generates the manifest key once: 32 random bytes in hex, private, reused afterwards', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ballast-keys-'));
    const loaded = configIn(dir, { manifestKey: { file: 'secrets/manifest-key' } });
    const first = stackSecrets(loaded).manifestKey;
    assert.match(first, /^[0-9a-f]{64}$/);
    const file = path.join(dir, 'secrets/manifest-key');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(stackSecrets(loaded).manifestKey, first, 'a second start reuses it');
    assert.equal(readFileSync(file, 'utf8'), `${first}\n`);
    assert.throws(() => stackSecrets(configIn(dir, {})), /backup\.manifestKey must be set/);
  });

  it('the worker reads the signing key and the previous ones at start, signing key first, and refuses a short one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ballast-keys-'));
    mkdirSync(path.join(dir, 'secrets'));
    for (const name of ['postgres-password', 'access', 'secret']) writeFileSync(path.join(dir, 'secrets', name), 'x');
    writeFileSync(path.join(dir, 'current'), `${'1'.repeat(64)}\n`);
    writeFileSync(path.join(dir, 'old'), '2'.repeat(32));
    writeFileSync(path.join(dir, 'short'), 'hunter2');
    const at = (backup: Record<string, unknown>) => {
      const { config, path: file } = configIn(dir, backup);
      return createConnections(config, file);
    };
    const connections = at({ manifestKey: { file: 'current' }, previousManifestKeys: [{ file: 'old' }] });
    assert.equal(connections.manifestSigningKey, '1'.repeat(64));
    assert.deepEqual(connections.manifestVerifyingKeys, ['1'.repeat(64), '2'.repeat(32)]);
    const none = at({});
    assert.equal(none.manifestSigningKey, undefined);
    assert.deepEqual(none.manifestVerifyingKeys, []);
    assert.throws(() => at({ manifestKey: { file: 'short' } }), (err: ConfigError) => /backup\.manifestKey: the key is 7 characters; at least 32/.test(err.problems[0]!));
    assert.throws(() => at({ previousManifestKeys: [{ file: 'short' }] }), (err: ConfigError) => /backup\.previousManifestKeys\.0:/.test(err.problems[0]!));
  });
});
