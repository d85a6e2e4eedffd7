import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { errorText, runCheck } from '../../activities/common/healthReport';
import { replicationFigures } from '../../activities/kafka/replication';

describe('runCheck', () => {
  it('reports healthy with the figures when there are no problems', async () => {
    const health = await runCheck('postgres', 1000, async (figures) => {
      figures.version = '15.18';
      return [];
    });
    assert.equal(health.healthy, true);
    assert.equal(health.figures.version, '15.18');
    assert.equal(health.error, undefined);
  });

  it('turns a thrown error into an unhealthy entry that keeps the figures gathered so far', async () => {
    const health = await runCheck('clickhouse', 1000, async (figures) => {
      figures.version = '18.16.1';
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:18123'), { code: 'ECONNREFUSED' });
    });
    assert.equal(health.healthy, false);
    assert.equal(health.figures.version, '18.16.1');
    assert.equal(health.error, 'connect ECONNREFUSED 127.0.0.1:18123');
  });

  it('reports a check that hangs as timed out', async () => {
    const health = await runCheck('kafka', 50, () => new Promise<string[]>(() => undefined));
    assert.equal(health.healthy, false);
    assert.equal(health.error, 'kafka check did not answer within 0.05 s');
  });

  it('joins several problems', async () => {
    const health = await runCheck('objectStore', 1000, async () => ['bucket a: does not exist (404)', 'bucket b: access denied (403)']);
    assert.equal(health.error, 'bucket a: does not exist (404); bucket b: access denied (403)');
  });
});

describe('errorText', () => {
  it('adds the error code when the message lacks it, and unpacks AggregateError', () => {
    assert.equal(errorText(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), 'refused (ECONNREFUSED)');
    assert.equal(errorText(new AggregateError([new Error('a'), new Error('b')])), 'a; b');
    assert.equal(errorText('plain'), 'plain');
  });
});

describe('replicationFigures', () => {
  const p = (topic: string, partition: number, leader: number, replicas: number[], isr: number[]) => ({
    topic,
    partition,
    leader,
    replicas,
    isr,
  });

  it('counts partitions whose ISR is smaller than the replica set as under-replicated', () => {
    const figures = replicationFigures(
      [p('orders', 0, 1, [1, 2, 3], [1, 3]), p('orders', 1, 3, [3, 1, 2], [3, 1, 2]), p('orders', 2, 1, [1, 2, 3], [1])],
      [1, 3],
    );
    assert.equal(figures.partitions, 3);
    assert.equal(figures.underReplicatedPartitions, 2);
    assert.deepEqual(figures.underReplicated, ['orders-0', 'orders-2']);
    assert.equal(figures.offlinePartitions, 0);
  });

  it('counts a partition without a live leader as offline', () => {
    const figures = replicationFigures([p('t', 0, -1, [2], []), p('t', 1, 2, [2], [2]), p('t', 2, 1, [1], [1])], [1]);
    assert.equal(figures.offlinePartitions, 2);
    assert.deepEqual(figures.offline, ['t-0', 't-1']);
  });

  it('caps the listed names but not the counts', () => {
    const many = Array.from({ length: 50 }, (_, i) => p('big', i, 1, [1, 2], [1]));
    const figures = replicationFigures(many, [1]);
    assert.equal(figures.underReplicatedPartitions, 50);
    assert.equal(figures.underReplicated.length, 20);
  });
});
