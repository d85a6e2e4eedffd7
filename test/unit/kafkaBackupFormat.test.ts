import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  CONFIG_SOURCE,
  PartitionRange,
  decodeMessageLine,
  encodeMessageLine,
  isInternalTopic,
  isValidTopicName,
  topicConfigOverrides,
  type ConfigEntryLike,
} from '../../activities/kafka/backupFormat';

describe('kafka backup message lines', () => {
  it('round-trips keys, values and headers as bytes, keeping nulls null', () => {
    const binary = Buffer.from([0, 255, 10, 13, 34]);
    const line = encodeMessageLine({
      offset: '41',
      timestamp: '1767225600000',
      key: binary,
      value: null,
      headers: { trace: Buffer.from('abc'), text: 'plain', repeated: [Buffer.from('a'), Buffer.from('b')], empty: null, gone: undefined },
    });
    assert.ok(line.endsWith('\n'));
    assert.equal(line.trimEnd().includes('\n'), false, 'one line per message, whatever the bytes');
    const stored = JSON.parse(line);
    assert.deepEqual(stored, {
      offset: '41',
      timestamp: '1767225600000',
      key: binary.toString('base64'),
      value: null,
      headers: {
        trace: Buffer.from('abc').toString('base64'),
        text: Buffer.from('plain').toString('base64'),
        repeated: ['YQ==', 'Yg=='],
        empty: null,
      },
    });
    const back = decodeMessageLine(line);
    assert.equal(back.offset, '41');
    assert.equal(back.timestamp, '1767225600000');
    assert.deepEqual(back.key, binary);
    assert.equal(back.value, null);
    assert.deepEqual(back.headers, {
      trace: Buffer.from('abc'),
      text: Buffer.from('plain'),
      repeated: [Buffer.from('a'), Buffer.from('b')],
      empty: null,
    });
  });

  it('writes {} for a message without headers and a null key', () => {
    const back = decodeMessageLine(encodeMessageLine({ offset: '0', timestamp: '1', key: null, value: Buffer.from('v') }));
    assert.equal(back.key, null);
    assert.deepEqual(back.value, Buffer.from('v'));
    assert.deepEqual(back.headers, {});
  });

  it('refuses a line that is not a backed-up message', () => {
    assert.throws(() => decodeMessageLine('{"hello":1}'), /not a backed-up Kafka message/);
  });
});

describe('PartitionRange', () => {
  it('accepts offsets from low up to the exclusive end, and is done there', () => {
    const r = new PartitionRange('5', '8');
    assert.equal(r.done, false);
    assert.equal(r.accept('5'), true);
    assert.equal(r.accept('6'), true);
    assert.equal(r.done, false);
    assert.equal(r.accept('7'), true);
    assert.equal(r.done, true);
    assert.equal(r.accept('8'), false, 'past the end');
    assert.equal(r.messages, 3);
  });

  it('skips redelivered offsets and counts only what it accepted across gaps', () => {
    const r = new PartitionRange('0', '10');
    assert.equal(r.accept('2'), true, 'compacted gap before');
    assert.equal(r.accept('2'), false, 'redelivered');
    assert.equal(r.accept('1'), false, 'before the position');
    assert.equal(r.accept('6'), true);
    assert.equal(r.messages, 2);
    assert.equal(r.done, false);
    // The fetch's last offset was a transaction marker at 9: the position moves past the end.
    r.passed('9');
    assert.equal(r.done, true);
    assert.equal(r.messages, 2);
  });

  it('never moves backwards, and an empty range is done at once', () => {
    const r = new PartitionRange('3', '3');
    assert.equal(r.done, true);
    const s = new PartitionRange('0', '100');
    s.passed('50');
    s.passed('10');
    assert.equal(s.position, 51n);
  });

  it('handles offsets beyond 2^53', () => {
    const r = new PartitionRange('9007199254740993', '9007199254740995');
    assert.equal(r.accept('9007199254740993'), true);
    assert.equal(r.accept('9007199254740994'), true);
    assert.equal(r.done, true);
  });
});

describe('topicConfigOverrides', () => {
  const entry = (configName: string, configValue: string | null, configSource: number, isDefault = false, isSensitive = false): ConfigEntryLike => ({
    configName,
    configValue,
    configSource,
    isDefault,
    isSensitive,
  });

  it("keeps the topic's own overrides and drops inherited broker values and defaults", () => {
    const kept = topicConfigOverrides([
      entry('retention.ms', '3600000', CONFIG_SOURCE.TOPIC_CONFIG),
      entry('cleanup.policy', 'compact', CONFIG_SOURCE.TOPIC_CONFIG),
      // Set in server.properties: Kafka says isDefault false, but it is the broker's, not the topic's.
      entry('min.insync.replicas', '2', CONFIG_SOURCE.STATIC_BROKER_CONFIG),
      entry('log.retention.bytes', '1', CONFIG_SOURCE.DYNAMIC_BROKER_CONFIG),
      entry('compression.type', 'producer', CONFIG_SOURCE.DYNAMIC_DEFAULT_BROKER_CONFIG),
      entry('segment.bytes', '1073741824', CONFIG_SOURCE.DEFAULT_CONFIG, true),
    ]);
    assert.deepEqual(kept, { 'cleanup.policy': 'compact', 'retention.ms': '3600000' });
  });

  it('falls back to isDefault when the broker does not say where a value comes from', () => {
    assert.deepEqual(
      topicConfigOverrides([entry('a', '1', CONFIG_SOURCE.UNKNOWN, false), entry('b', '2', CONFIG_SOURCE.UNKNOWN, true)]),
      { a: '1' },
    );
  });

  it('keeps sensitive overrides as null', () => {
    assert.deepEqual(topicConfigOverrides([entry('secret', 'x', CONFIG_SOURCE.TOPIC_CONFIG, false, true)]), { secret: null });
  });
});

describe('topic names', () => {
  it('flags Kafka internal topics', () => {
    assert.equal(isInternalTopic('__consumer_offsets'), true);
    assert.equal(isInternalTopic('__transaction_state'), true);
    assert.equal(isInternalTopic('orders'), false);
    assert.equal(isInternalTopic('_schemas'), false);
  });

  it('accepts what Kafka accepts', () => {
    assert.equal(isValidTopicName('orders.v2_eu-1'), true);
    assert.equal(isValidTopicName(''), false);
    assert.equal(isValidTopicName('a/b'), false);
    assert.equal(isValidTopicName('..'), false);
    assert.equal(isValidTopicName('x'.repeat(250)), false);
  });
});
