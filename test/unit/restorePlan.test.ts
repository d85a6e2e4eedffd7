import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { buildTasks } from '../../activities/restore/plan';
import { scratchTargets, targetProblems, type Inventory } from '../../activities/restore/targets';
import type { BackupPiece } from '../../contracts/backupTypes';
import type { RestoreTargets } from '../../contracts/restoreTypes';

const piece = (component: BackupPiece['component'], name: string, details?: Record<string, unknown>): BackupPiece => ({
  component,
  name,
  key: `backups/b/${name}`,
  size: 1,
  snapshotAt: '',
  startedAt: '',
  finishedAt: '',
  durationMs: 0,
  details,
});

describe('buildTasks', () => {
  const pieces = [
    piece('postgres', 'shop'),
    piece('clickhouse', 'analytics.events/schema'),
    piece('clickhouse', 'analytics.events/202601'),
    piece('clickhouse', 'analytics.events/202602'),
    piece('clickhouse', 'analytics.daily/schema'),
    piece('kafka', 'metadata'),
    piece('kafka', 'orders/0'),
    piece('kafka', 'orders/1'),
    piece('objectStore', 'platform-data/listing', { bucket: 'platform-data' }),
  ];

  it('makes one task per database, table, Kafka cluster and bucket, under the original names by default', () => {
    const tasks = buildTasks(pieces, { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} });
    assert.deepEqual(
      tasks.map((t) => `${t.kind}:${'target' in t ? t.target : t.kind === 'kafka' ? `suffix=${t.suffix}` : ''}`),
      ['postgresDatabase:shop', 'bucket:platform-data', 'clickhouseTable:analytics', 'clickhouseTable:analytics', 'kafka:suffix='],
    );
    const events = tasks.find((t) => t.kind === 'clickhouseTable' && t.table === 'events');
    assert.equal(events?.kind === 'clickhouseTable' && events.pieces.length, 3);
    const kafka = tasks.find((t) => t.kind === 'kafka');
    assert.equal(kafka?.kind === 'kafka' && kafka.topicPieces.length, 2);
  });

  it('maps targets beside the originals', () => {
    const tasks = buildTasks(pieces, { postgres: { shop: 'shop_drill' }, clickhouse: { analytics: 'analytics_drill' }, kafkaSuffix: '_drill', buckets: { 'platform-data': 'platform-data-drill' } });
    const targets = tasks.map((t) => ('target' in t ? t.target : t.kind === 'kafka' ? t.suffix : ''));
    assert.deepEqual(targets, ['shop_drill', 'platform-data-drill', 'analytics_drill', 'analytics_drill', '_drill']);
  });
});

// The backup holds shop and billing; the config no longer lists billing (config drift).
const drifted = [
  piece('postgres', 'shop'),
  piece('postgres', 'billing'),
  piece('clickhouse', 'analytics.events/schema'),
  piece('kafka', 'metadata'),
  piece('objectStore', 'platform-data/listing', { bucket: 'platform-data' }),
];
const inventory: Inventory = { postgres: ['shop'], postgresMaintenance: 'postgres', clickhouse: ['analytics'], buckets: ['platform-data'], backupBucket: 'ballast-backups' };
const drill = { suffix: '_drill', bucketSuffix: '-drill' };
const none: RestoreTargets = { postgres: {}, clickhouse: {}, kafkaSuffix: '', buckets: {} };
const problems = (targets: RestoreTargets, scratch?: typeof drill, from = drifted) => targetProblems(from, buildTasks(from, targets), targets, inventory, scratch);

describe('restore targets', () => {
  it('a drill gives every piece in the backup a scratch name, configured or not', () => {
    const targets = scratchTargets(drifted, drill);
    assert.deepEqual(targets, {
      postgres: { billing: 'billing_drill', shop: 'shop_drill' },
      clickhouse: { analytics: 'analytics_drill' },
      kafkaSuffix: '_drill',
      buckets: { 'platform-data': 'platform-data-drill' },
    });
    assert.deepEqual(problems(targets, drill), []);
  });

  it('a drill refuses any target that is not its scratch name, or that is a production name', () => {
    const targets = { ...scratchTargets(drifted, drill), postgres: { shop: 'shop_drill', billing: 'billing' } };
    assert.ok(problems(targets, drill).some((p) => /Postgres database billing: a drill restores into scratch names only \(billing_drill\), not billing/.test(p)));
    const clash = targetProblems(drifted, buildTasks(drifted, scratchTargets(drifted, drill)), scratchTargets(drifted, drill), { ...inventory, postgres: ['shop', 'shop_drill'] }, drill);
    assert.ok(clash.some((p) => /the scratch name shop_drill is a production Postgres database/.test(p)), clash.join('\n'));
  });

  it('a restore in place refuses a database the config no longer lists', () => {
    const found = problems(none);
    assert.ok(found.some((p) => /Postgres database billing: restoring it in place needs it in the config/.test(p)), found.join('\n'));
    assert.equal(found.length, 1, found.join('\n'));
    assert.deepEqual(problems({ ...none, postgres: { billing: 'billing_copy' } }), []);
  });

  it('refuses a source the backup does not hold (a typo), two sources into one target, and another production database', () => {
    assert.ok(problems({ ...none, postgres: { shopp: 'shop_copy', billing: 'billing_copy' } }).some((p) => /targets\.postgres\.shopp: this restore has no Postgres database shopp \(the backup holds: billing, shop/.test(p)));
    assert.ok(problems({ ...none, postgres: { shop: 'copy', billing: 'copy' } }).some((p) => /shop and billing would both be restored into copy|billing and shop would both be restored into copy/.test(p)));
    assert.ok(problems({ ...none, postgres: { billing: 'shop' } }).some((p) => /Postgres database billing: its target shop is another production Postgres database/.test(p)));
  });

  it('refuses the server databases, the backup bucket, and names too long for the restore step', () => {
    assert.ok(problems({ ...none, postgres: { billing: 'template1' } }).some((p) => /template1 is the server's own database/.test(p)));
    assert.ok(problems({ ...none, postgres: { billing: 'billing_copy' }, clickhouse: { analytics: 'system' } }).some((p) => /system is a system database/.test(p)));
    assert.ok(problems({ ...none, postgres: { billing: 'billing_copy' }, buckets: { 'platform-data': 'ballast-backups' } }).some((p) => /is the backup bucket/.test(p)));
    assert.ok(problems({ ...none, postgres: { billing: 'b'.repeat(41) } }).some((p) => /longer than 40 characters/.test(p)));
  });
});
