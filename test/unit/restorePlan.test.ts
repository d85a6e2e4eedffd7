import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { buildTasks } from '../../activities/restore/plan';
import type { BackupPiece } from '../../contracts/backupTypes';

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
