import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  engineArguments,
  isMergeTreeFamily,
  isSqlLiteral,
  parseVersion,
  partitionCondition,
  partitionExpression,
  qualifiedName,
  quoteIdentifier,
  quoteString,
  splitTopLevelArgs,
  validateName,
} from '../../activities/clickhouse/sql';
import {
  CompressedFrameReader,
  blockChecksumMatches,
  lz4DecompressBlock,
  trailingException,
  uncompressedBlock,
} from '../../activities/clickhouse/compressedBlocks';
import { cityHash128 } from '../../activities/clickhouse/cityHash';
import {
  checkSideNames,
  exchangeStatement,
  fileNameLength,
  nextSideStep,
  renameStatement,
  replicatedRefusal,
  runTag,
  sideNames,
  sideState,
  swapName,
  uuidPrefix,
  type SeenTable,
} from '../../activities/clickhouse/sideTables';
import { renameCreateStatement } from '../../activities/clickhouse/createStatement';

// A real response of ClickHouse 18.16 to a compress=1 query that failed: one LZ4 block holding the
// exception text, its checksum computed by the server.
const REAL_BLOCK = Buffer.from(
  '71033b29364e1a15b2090fdc95e9dd9a826f00000070000000fb4d436f64653a203131352c20652e646973706c6179546578742829203d2044423a3a457863657074696f6e3a20556e6b6e6f776e2073657474696e6720687474705f726573706f6e73655f6275666665725f73697a652c20652e77686145005074696f6e0a',
  'hex',
);

/** A ClickHouse compressed block around `payload` (the checksum is not checked, zeros do). */
function block(method: number, payload: Buffer, decompressedSize: number): Buffer {
  const header = Buffer.alloc(25);
  header[16] = method;
  header.writeUInt32LE(payload.length + 9, 17);
  header.writeUInt32LE(decompressedSize, 21);
  return Buffer.concat([header, payload]);
}
const plain = (text: string) => block(0x02, Buffer.from(text, 'latin1'), Buffer.byteLength(text, 'latin1'));

describe('quoting', () => {
  it('back-quotes identifiers and escapes backslash and backquote', () => {
    assert.equal(quoteIdentifier('events'), '`events`');
    assert.equal(quoteIdentifier('we`ird\\name'), '`we\\`ird\\\\name`');
    assert.equal(qualifiedName('db', 't-1'), '`db`.`t-1`');
  });

  it('refuses empty names and control characters', () => {
    assert.throws(() => quoteIdentifier(''), /non-empty/);
    assert.throws(() => validateName('a\nb', 'table'), /table contains control characters/);
    assert.throws(() => validateName(undefined, 'database'), /database must be/);
  });

  it('quotes strings with backslash escapes', () => {
    assert.equal(quoteString("it's"), "'it\\'s'");
    assert.equal(quoteString('a\\b\n'), "'a\\\\b\\n'");
  });
});

describe('server facts', () => {
  it('parses versions', () => {
    assert.deepEqual(parseVersion('18.16.1'), [18, 16]);
    assert.deepEqual(parseVersion('24.8.4.13'), [24, 8]);
    assert.throws(() => parseVersion('dev'));
  });

  it('knows the MergeTree family', () => {
    for (const e of ['MergeTree', 'ReplicatedReplacingMergeTree', 'CollapsingMergeTree', 'SharedMergeTree']) assert.ok(isMergeTreeFamily(e), e);
    for (const e of ['Memory', 'View', 'MaterializedView', 'Distributed', 'Log', 'TinyLog', 'Merge']) assert.ok(!isMergeTreeFamily(e), e);
  });
});

describe('PARTITION BY from the engine text', () => {
  it('reads the expression up to the next clause', () => {
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY toYYYYMM(d) ORDER BY (id, d) SETTINGS index_granularity = 8192'), 'toYYYYMM(d)');
    assert.equal(partitionExpression('MergeTree', 'MergeTree() PARTITION BY (toYYYYMM(d), region) ORDER BY id'), '(toYYYYMM(d), region)');
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY region PRIMARY KEY id ORDER BY id'), 'region');
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY intDiv(id, 1000) SAMPLE BY id ORDER BY id'), 'intDiv(id, 1000)');
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY toDate(ts) TTL ts + toIntervalDay(1) SETTINGS x = 1'), 'toDate(ts)');
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY d ORDER BY id'), 'd');
  });

  it('ignores keywords inside strings, quoted names and brackets', () => {
    assert.equal(
      partitionExpression('MergeTree', "MergeTree PARTITION BY if(s = ' ORDER BY ', 1, 2) ORDER BY `order by`"),
      "if(s = ' ORDER BY ', 1, 2)",
    );
    assert.equal(partitionExpression('MergeTree', 'MergeTree PARTITION BY `settings` ORDER BY id'), '`settings`');
  });

  it('reads it from a CREATE TABLE query after ENGINE =', () => {
    const create =
      "CREATE TABLE db.t ( d Date, partition_by String DEFAULT 'PARTITION BY x', id UInt64) ENGINE = ReplacingMergeTree(id) PARTITION BY toMonday(d) ORDER BY id SETTINGS index_granularity = 8192";
    assert.equal(partitionExpression('ReplacingMergeTree', create), 'toMonday(d)');
  });

  it('returns empty for unpartitioned tables', () => {
    assert.equal(partitionExpression('MergeTree', 'MergeTree ORDER BY id SETTINGS index_granularity = 8192'), '');
    assert.equal(partitionExpression('MergeTree', 'MergeTree() ORDER BY tuple()'), '');
    assert.equal(partitionExpression('ReplacingMergeTree', 'ReplacingMergeTree(ver) ORDER BY id'), '');
    assert.equal(partitionExpression('ReplicatedMergeTree', "ReplicatedMergeTree('/zk/t', '{replica}') ORDER BY id"), '');
  });

  it('derives the month partition of the deprecated engine syntax', () => {
    assert.equal(partitionExpression('MergeTree', 'MergeTree(d, (id, d), 8192)'), 'toYYYYMM(d)');
    assert.equal(partitionExpression('CollapsingMergeTree', 'CollapsingMergeTree(EventDate, intHash32(UserID), (CounterID, EventDate), 8192, Sign)'), 'toYYYYMM(EventDate)');
    assert.equal(partitionExpression('ReplicatedMergeTree', "ReplicatedMergeTree('/zk/t', 'r1', d, (id), 8192)"), 'toYYYYMM(d)');
  });

  it('splits arguments at top-level commas only', () => {
    assert.deepEqual(splitTopLevelArgs("a, f(b, c), 'd,e', [1, 2]"), ['a', 'f(b, c)', "'d,e'", '[1, 2]']);
    assert.deepEqual(engineArguments("ReplicatedMergeTree('/a,b', 'r') ORDER BY x"), ["'/a,b'", "'r'"]);
    assert.equal(engineArguments('MergeTree ORDER BY x'), undefined);
  });
});

describe('partition values', () => {
  it('accepts the literals system.parts prints', () => {
    for (const v of ['202601', '-3', '1.5', '1e10', "'2026-01-01'", "'it\\'s'", '(202601, \'eu\')', 'tuple()', 'NULL', '[1, 2]', '(1, (2, \'x\'))']) {
      assert.ok(isSqlLiteral(v), v);
    }
  });

  it('refuses anything that is not one literal', () => {
    for (const v of ['', '1; DROP TABLE t', "'a' OR 1", 'sleep(3)', "'unterminated", '(1,', '()', '1 2', 'd']) {
      assert.ok(!isSqlLiteral(v), v);
    }
  });

  it('builds the 18.16 WHERE condition', () => {
    assert.equal(partitionCondition('toYYYYMM(d)', '202601'), '(toYYYYMM(d)) = 202601');
    assert.equal(partitionCondition('(toYYYYMM(d), region)', "(202601, 'eu')"), "((toYYYYMM(d), region)) = (202601, 'eu')");
    assert.equal(partitionCondition('', 'tuple()'), undefined);
    assert.throws(() => partitionCondition('d', '1) OR (1'), /unexpected partition value/);
  });
});

describe('ClickHouse compressed blocks', () => {
  it('decompresses LZ4 literals and overlapping matches', () => {
    // 'abc' then a match of 9 bytes at offset 3, then the literal 'xyz'.
    const src = Buffer.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x30, 0x78, 0x79, 0x7a]);
    assert.equal(lz4DecompressBlock(src, 15).toString(), 'abcabcabcabcxyz');
    // 20 literals: length 15 + 5 in an extra byte.
    const long = Buffer.concat([Buffer.from([0xf0, 5]), Buffer.from('abcdefghijklmnopqrst')]);
    assert.equal(lz4DecompressBlock(long, 20).toString(), 'abcdefghijklmnopqrst');
    assert.throws(() => lz4DecompressBlock(src, 16), /corrupt LZ4/);
    assert.throws(() => lz4DecompressBlock(Buffer.from([0x10, 0x61, 0x05, 0x00]), 10), /offset/);
  });

  it('follows block framing across arbitrary chunk boundaries', () => {
    const lz4 = block(0x82, Buffer.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x30, 0x78, 0x79, 0x7a]), 15);
    const stream = Buffer.concat([plain('hello'), lz4]);
    for (const size of [1, 7, 25, 1000]) {
      const reader = new CompressedFrameReader();
      for (let at = 0; at < stream.length; at += size) reader.push(stream.subarray(at, at + size));
      assert.deepEqual(reader.end(), { blocks: 2, compressedBytes: stream.length, decompressedBytes: 20, methods: ['none', 'lz4'] });
      assert.equal(reader.lastBlockContent()!.toString(), 'abcabcabcabcxyz');
    }
  });

  it('refuses a stream cut inside a block, or that is not compressed at all', () => {
    const stream = Buffer.concat([plain('hello'), plain('world')]);
    const cut = new CompressedFrameReader();
    cut.push(stream.subarray(0, stream.length - 2));
    assert.throws(() => cut.end(), /cut short inside block 2/);
    assert.throws(() => new CompressedFrameReader().push(Buffer.from('Code: 60, e.displayText() = DB::Exception: Table x does not exist')), /not ClickHouse compressed data/);
    assert.deepEqual(new CompressedFrameReader().end(), { blocks: 0, compressedBytes: 0, decompressedBytes: 0, methods: [] });
  });

  it('recognises an exception ClickHouse appended to a started response', () => {
    assert.equal(
      trailingException(Buffer.from("\u0001\u0002dataCode: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception\n")),
      "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception",
    );
    assert.match(trailingException(Buffer.from('xxCode: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED) (version 24.8.1.1)\n'))!, /^Code: 241\. DB::Exception/);
    assert.equal(trailingException(Buffer.from('rows mentioning Code: 1, e.displayText() = DB::Exception: but not at the end\u0000\u0001')), undefined);
  });

  it('reads a real 18.16 block: checksum, LZ4 content and the exception in it', () => {
    assert.ok(blockChecksumMatches(REAL_BLOCK));
    const reader = new CompressedFrameReader();
    reader.push(REAL_BLOCK);
    assert.deepEqual(reader.end(), { blocks: 1, compressedBytes: 127, decompressedBytes: 112, methods: ['lz4'] });
    assert.equal(
      trailingException(reader.lastBlockContent()!),
      'Code: 115, e.displayText() = DB::Exception: Unknown setting http_response_buffer_size, e.what() = DB::Exception',
    );
    const corrupted = Buffer.from(REAL_BLOCK);
    corrupted[40] = corrupted[40]! ^ 1;
    assert.ok(!blockChecksumMatches(corrupted));
  });

  it('frames data as checksummed blocks of method none', () => {
    for (const size of [0, 1, 7, 100, 119, 200, 1000]) {
      const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 255));
      const block = uncompressedBlock(data);
      assert.ok(blockChecksumMatches(block), `size ${size}`);
      const reader = new CompressedFrameReader();
      reader.push(block);
      assert.deepEqual(reader.end().methods, ['none']);
      assert.deepEqual(reader.lastBlockContent(), data);
    }
    // CityHash128 v1.0.2 of the empty string: k0 and k1 through its short-input path.
    assert.deepEqual(cityHash128(Buffer.alloc(0)), cityHash128(Buffer.from('')));
  });
});

describe('restore side tables', () => {
  const names = sideNames('events', 'restore-2026-01-01T00:00:00Z');
  const tag = runTag('restore-2026-01-01T00:00:00Z');
  const ORIGINAL = '9f512eaf-db87-4d48-bd55-677d66a60621';
  const LOADED = '1c2d3e4f-0000-4000-8000-000000000001';
  const seen = (name: string, uuid = ''): SeenTable => ({ name, uuid });
  const step = (tables: SeenTable[], swapStarted = false) => nextSideStep(names, sideState(names, tables), swapStarted);

  it('names the loading, aside and exchange tables after the table and the run', () => {
    assert.match(tag, /^[0-9a-f]{8}$/);
    assert.equal(runTag('restore-2026-01-01T00:00:00Z'), tag, 'the same run, the same tag');
    // Ids that share their last characters (a schedule's) still get their own aside table.
    assert.notEqual(runTag('drill-2026-02-01T00:00:00Z'), runTag('drill-2026-03-01T00:00:00Z'));
    assert.deepEqual(names, {
      table: 'events',
      loading: 'events__ballast_loading',
      aside: `events_before_${tag}`,
      swapPrefix: `events__ballast_${tag}_`,
    });
    assert.equal(swapName(names, ORIGINAL), `events__ballast_${tag}_9f512eaf`);
    assert.throws(() => swapName(names, '00000000-0000-0000-0000-000000000000'), /no table UUID/);
    assert.equal(uuidPrefix(''), '');
    assert.equal(uuidPrefix('9F512EAF-DB87-4D48-BD55-677D66A60621'), '9f512eaf');
  });

  it('builds RENAME and EXCHANGE with quoted names, and the loading table from the saved schema', () => {
    assert.equal(
      renameStatement('db', [['t', 't_before_x'], ['t__ballast_loading', 't']]),
      'RENAME TABLE `db`.`t` TO `db`.`t_before_x`, `db`.`t__ballast_loading` TO `db`.`t`',
    );
    assert.equal(renameStatement('db', [['d1', 'd2']], true), 'RENAME DICTIONARY `db`.`d1` TO `db`.`d2`');
    assert.throws(() => renameStatement('db', []), /nothing to rename/);
    assert.equal(exchangeStatement('my-db', 'we`ird', 'x'), 'EXCHANGE TABLES `my-db`.`we\\`ird` AND `my-db`.`x`');
    assert.equal(exchangeStatement('db', 'a', 'b', true), 'EXCHANGE DICTIONARIES `db`.`a` AND `db`.`b`');
    assert.equal(
      renameCreateStatement('CREATE TABLE db.events ( d Date) ENGINE = MergeTree ORDER BY d', 'db', 'events', 'db', names.loading).statement,
      'CREATE TABLE `db`.`events__ballast_loading` ( d Date) ENGINE = MergeTree ORDER BY d',
    );
  });

  it('refuses names whose side tables would not fit in a file name', () => {
    assert.equal(fileNameLength('events_1'), 8);
    assert.equal(fileNameLength('a-b'), 5);
    assert.equal(fileNameLength('ü'), 6, 'two UTF-8 bytes, each %XX');
    checkSideNames(sideNames('x'.repeat(200), 'r'));
    assert.throws(() => checkSideNames(sideNames('x'.repeat(220), 'r')), /too long to restore beside itself/);
    assert.throws(() => checkSideNames(sideNames('é'.repeat(40), 'r')), /too long/);
  });

  it('refuses Replicated tables, naming them, and lets every other engine through', () => {
    assert.match(replicatedRefusal('analytics', 'events', 'ReplicatedReplacingMergeTree') ?? '', /^analytics\.events is ReplicatedReplacingMergeTree: .*ZooKeeper path/);
    for (const engine of ['MergeTree', 'ReplacingMergeTree', 'View', '', 'SharedMergeTree']) assert.equal(replicatedRefusal('a', 'b', engine), undefined, engine);
  });

  it('loads when nothing of this run is there, whether or not the target exists', () => {
    assert.deepEqual(step([]), { step: 'load' });
    assert.deepEqual(step([seen('events', ORIGINAL)]), { step: 'load' });
    assert.deepEqual(step([seen('events'), seen(names.loading)]), { step: 'load' }, 'a half-loaded side table: resumed or loaded again');
    // Another run's tables are not this run's business.
    assert.deepEqual(step([seen('events'), seen('events_before_00000000'), seen('events__ballast_00000000_9f512eaf', ORIGINAL)]), { step: 'load' });
  });

  it('finds the work done after the swap, and never swaps back', () => {
    // RENAME path (18.16, Ordinary): the aside is there and the target too.
    assert.deepEqual(step([seen('events'), seen(names.aside)]), { step: 'done' });
    // EXCHANGE path, finished.
    assert.deepEqual(step([seen('events', LOADED), seen(names.aside, ORIGINAL)]), { step: 'done' });
    // EXCHANGE done, the aside rename not yet: the partner holds the UUID it is named after.
    const partner = swapName(names, ORIGINAL);
    assert.deepEqual(step([seen('events', LOADED), seen(partner, ORIGINAL)]), { step: 'keepAside', from: partner });
    // No table to replace: only the heartbeat can tell a renamed-in copy from an untouched table.
    assert.deepEqual(step([seen('events')], true), { step: 'done' });
    assert.deepEqual(step([seen('events'), seen(names.loading)], true), { step: 'load' });
  });

  it('finishes a swap that stopped halfway', () => {
    const partner = swapName(names, ORIGINAL);
    // The loaded copy renamed to the partner's name, not exchanged yet.
    assert.deepEqual(step([seen('events', ORIGINAL), seen(partner, LOADED)]), { step: 'swap', from: partner });
    // The fallback RENAME t TO aside, partner TO t stopped after its first half.
    assert.deepEqual(step([seen(names.aside, ORIGINAL), seen(partner, LOADED)]), { step: 'swap', from: partner });
    // RENAME t TO aside, loading TO t (18.16) stopped after its first half.
    assert.deepEqual(step([seen(names.aside), seen(names.loading)]), { step: 'swap', from: names.loading });
  });

  it('refuses states no attempt leaves, touching nothing', () => {
    const partner = swapName(names, ORIGINAL);
    const refused = (tables: SeenTable[], pattern: RegExp) => {
      const next = step(tables);
      assert.equal(next.step, 'refuse', JSON.stringify(tables));
      assert.match((next as { reason: string }).reason, pattern);
    };
    refused([seen('events', '7e7e7e7e-0000-4000-8000-000000000002'), seen(partner, LOADED)], /no longer the table this restore set out to replace/);
    refused([seen(partner, ORIGINAL)], /events is missing/);
    refused([seen('events', LOADED), seen(partner, ORIGINAL), seen(names.aside, LOADED)], /exists as well/);
    refused([seen(names.aside)], /neither events nor events__ballast_loading/);
    refused([seen('events', ORIGINAL), seen(partner, LOADED), seen(`${names.swapPrefix}1c2d3e4f`, LOADED)], /more than one exchange table/);
  });
});
