import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { nextBroker, restartSafety, type PartitionState } from '../../contracts/brokerSafety';

const p = (partition: number, replicas: number[], isr: number[], minIsr = 2, topic = 't'): PartitionState => ({ topic, partition, replicas, isr, minIsr });

describe('restartSafety', () => {
  it('is safe when every partition of the broker has an ISR above min.insync.replicas', () => {
    const verdict = restartSafety(1, [p(0, [1, 2, 3], [1, 2, 3]), p(1, [2, 3, 1], [2, 3, 1])]);
    assert.equal(verdict.safe, true);
    assert.deepEqual(verdict.blocking, []);
  });

  it('refuses while an ISR is already below min.insync.replicas', () => {
    const verdict = restartSafety(1, [p(0, [1, 2, 3], [1])]);
    assert.equal(verdict.safe, false);
    assert.match(verdict.blocking[0]!.why, /already below min\.insync\.replicas 2/);
  });

  it('refuses while an ISR equals min.insync.replicas with the broker in it', () => {
    const verdict = restartSafety(1, [p(0, [1, 2, 3], [1, 2])]);
    assert.equal(verdict.safe, false);
    assert.match(verdict.blocking[0]!.why, /equals min\.insync\.replicas 2 and broker 1 is in it/);
  });

  it('allows it when the ISR equals min.insync.replicas without the broker (it is the lagging one)', () => {
    assert.equal(restartSafety(3, [p(0, [1, 2, 3], [1, 2])]).safe, true);
  });

  it('ignores partitions without a replica on the broker', () => {
    assert.equal(restartSafety(4, [p(0, [1, 2, 3], [1])]).safe, true);
  });

  it('reports partitions whose replication factor is at most min.insync.replicas as never safe, without blocking', () => {
    const verdict = restartSafety(1, [p(0, [1, 2, 3], [1, 2, 3], 3, 'strict'), p(1, [1], [1], 1, 'single')]);
    assert.equal(verdict.safe, true);
    assert.deepEqual(verdict.neverSafe.map((c) => c.topic), ['strict', 'single']);
    assert.match(verdict.neverSafe[0]!.why, /replication factor 3 <= min\.insync\.replicas 3/);
  });

  it('still refuses a never-safe partition whose ISR is below min.insync.replicas (a broker is down)', () => {
    const verdict = restartSafety(1, [p(0, [1, 2, 3], [1, 2], 3, 'strict')]);
    assert.equal(verdict.safe, false);
    assert.match(verdict.blocking[0]!.why, /ISR 2 is already below min\.insync\.replicas 3/);
    assert.deepEqual(verdict.neverSafe, []);
  });

  it('lists every blocking partition, not just the first', () => {
    const verdict = restartSafety(2, [p(0, [1, 2, 3], [2]), p(1, [1, 2, 3], [2, 3]), p(2, [1, 2, 3], [1, 2, 3])]);
    assert.deepEqual(verdict.blocking.map((c) => c.partition), [0, 1]);
  });
});

describe('nextBroker', () => {
  it('takes the others in id order and the quorum leader last', () => {
    assert.equal(nextBroker([3, 1, 2], 1), 2);
    assert.equal(nextBroker([1, 3], 1), 3);
    assert.equal(nextBroker([1], 1), 1);
    assert.equal(nextBroker([], 1), undefined);
  });

  it('follows the leader when it moves between steps', () => {
    assert.equal(nextBroker([1, 3], 3), 1);
  });
});
