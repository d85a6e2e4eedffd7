import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig, readSecret } from '../../workers/config';

const minimal = {
  environment: 'demo',
  postgres: { user: 'ballast', databases: ['shop'] },
  clickhouse: { url: 'http://127.0.0.1:8123', databases: [{ name: 'analytics' }] },
  kafka: { brokers: [{ id: 1, host: '127.0.0.1', port: 9092 }] },
  objectStore: { backupBucket: 'ballast-backups' },
};

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('config was accepted');
}

describe('config', () => {
  it('loads the committed local-stack ballast.yaml', () => {
    const { config } = loadConfig(path.resolve(__dirname, '../../ballast.yaml'));
    assert.equal(config.environment, 'demo');
    assert.deepEqual(
      config.kafka.brokers.map((b) => b.id),
      [1, 2, 3],
    );
    assert.equal(config.objectStore.backupBucket, 'ballast-backups');
  });

  it('fills defaults so a minimal config is complete', () => {
    const config = parseConfig(minimal);
    assert.equal(config.temporal.address, '127.0.0.1:7233');
    assert.equal(config.temporal.taskQueue, 'ballast');
    assert.equal(config.postgres.port, 5432);
    assert.deepEqual(config.clickhouse.databases[0]?.tables, []);
    assert.equal(config.healthCheck.timeoutSeconds, 10);
  });

  it('names the field and the problem', () => {
    const problems = problemsOf({ ...minimal, postgres: { ...minimal.postgres, port: 70000 } });
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^postgres\.port: /);
  });

  it('refuses unknown keys, so a typo is not silently ignored', () => {
    const problems = problemsOf({ ...minimal, objectStore: { ...minimal.objectStore, backupBuckett: 'x' } });
    assert.ok(problems.some((p) => p.startsWith('objectStore') && p.includes('backupBuckett')), problems.join('\n'));
  });

  it('refuses a missing required section and an unsafe SQL identifier', () => {
    const { kafka: _omitted, ...withoutKafka } = minimal;
    const problems = problemsOf({ ...withoutKafka, postgres: { user: 'u', databases: ['shop; DROP TABLE x'] } });
    assert.ok(problems.some((p) => p.startsWith('kafka:')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('postgres.databases.0:')), problems.join('\n'));
  });

  it('refuses duplicate broker ids and a bad bucket name', () => {
    const problems = problemsOf({
      ...minimal,
      kafka: { brokers: [{ id: 1, host: 'a', port: 1 }, { id: 1, host: 'b', port: 2 }] },
      objectStore: { backupBucket: 'Bad_Bucket' },
    });
    assert.ok(problems.includes('kafka.brokers.1.id: duplicate broker id 1'), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('objectStore.backupBucket:')), problems.join('\n'));
  });

  it('refuses production without signed approvals, with four-eyes off, with the local broker control, or without a manifest key', () => {
    const problems = problemsOf({ ...minimal, environment: 'production', approvals: { fourEyes: false } });
    assert.ok(problems.includes('approvals.allowedSignersFile: required when environment is production: approvals must be signed (git allowed-signers format)'), problems.join('\n'));
    assert.ok(problems.includes('approvals.fourEyes: must be true when environment is production'), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('kafka.restart.backend: must not be local')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('backup.manifestKey: required when environment is production')), problems.join('\n'));
    const production = parseConfig({
      ...minimal,
      environment: 'production',
      approvals: { allowedSignersFile: 'signers' },
      kafka: { ...minimal.kafka, restart: { backend: 'kubernetes' } },
      backup: { manifestKey: { file: '/run/secrets/manifest-key' } },
    });
    assert.equal(production.approvals.fourEyes, true);
    assert.deepEqual(production.backup.manifestKey, { file: '/run/secrets/manifest-key' });
  });

  it('leaves the manifest key optional outside production, and keeps 3 partial backups by default', () => {
    const demo = parseConfig(minimal);
    assert.equal(demo.backup.manifestKey, undefined);
    assert.deepEqual(demo.backup.previousManifestKeys, []);
    assert.equal(demo.backup.retention.partial, 3);
    assert.ok(problemsOf({ ...minimal, backup: { retention: { partial: -1 } } }).some((p) => p.startsWith('backup.retention.partial:')));
    assert.ok(problemsOf({ ...minimal, backup: { manifestKey: 'inline-secret' } }).some((p) => p.startsWith('backup.manifestKey:')), 'a key is a secret reference, never the key itself');
  });

  it('the committed ballast.yaml signs with the key the local stack generates', () => {
    const { config } = loadConfig(path.resolve(__dirname, '../../ballast.yaml'));
    assert.deepEqual(config.backup.manifestKey, { file: '.stack/secrets/manifest-key' });
  });

  it('resolves the allowed-signers file beside the config and refuses one that is missing, empty or malformed', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ballast-signers-'));
    const file = path.join(dir, 'ballast.yaml');
    const write = (signers: string | undefined) => {
      if (signers !== undefined) writeFileSync(path.join(dir, 'allowed_signers'), signers);
      writeFileSync(file, JSON.stringify({ ...minimal, approvals: { allowedSignersFile: 'allowed_signers' } }));
    };
    write(undefined);
    assert.throws(() => loadConfig(file), (err: ConfigError) => /approvals\.allowedSignersFile: cannot read .*allowed_signers/.test(err.problems[0]!));
    write('# nobody yet\n');
    assert.throws(() => loadConfig(file), (err: ConfigError) => /lists no key/.test(err.problems[0]!));
    write('bob ssh-ed25519\n');
    assert.throws(() => loadConfig(file), (err: ConfigError) => /entry 1 is not/.test(err.problems[0]!));
    write('bob namespaces="ballast-approval" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOgX6TdOTPCPsOrvet3p8UnJIi6kl3+AK287Y00Py/60\n');
    assert.equal(loadConfig(file).config.approvals.allowedSignersFile, path.join(dir, 'allowed_signers'));
  });

  it('says which file is unreadable or not YAML', () => {
    assert.throws(() => loadConfig('/nonexistent/ballast.yaml'), /\/nonexistent\/ballast\.yaml[\s\S]*cannot read the file/);
    const dir = mkdtempSync(path.join(tmpdir(), 'ballast-config-'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'environment: [unclosed');
    assert.throws(() => loadConfig(bad), /not valid YAML/);
  });

  it('reads secrets from the environment or a file beside the config, and names a missing one', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ballast-secret-'));
    writeFileSync(path.join(dir, 'token'), 's3cret\n');
    const configFile = path.join(dir, 'ballast.yaml');
    assert.equal(readSecret({ file: 'token' }, configFile), 's3cret');
    assert.equal(readSecret({ env: 'BALLAST_TEST_SECRET' }, configFile, { BALLAST_TEST_SECRET: 'x' }), 'x');
    assert.throws(() => readSecret({ env: 'BALLAST_TEST_SECRET' }, configFile, {}), /BALLAST_TEST_SECRET is not set/);
  });
});
