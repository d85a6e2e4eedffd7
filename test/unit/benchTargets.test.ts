import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { SIZES, selectParts, selectSizes } from '../../scripts/benchmark/sizes';
import { LIMITS, atMost, cpuPerGb, flatMemory, fmtRatio, fmtSeconds, notMeasured, postgresRatio, ratio, verdictTable } from '../../scripts/benchmark/targets';

describe('bench sizes', () => {
  it('the largest is ten times the smallest, on Postgres text rows and ClickHouse rows alike', () => {
    const smallest = SIZES[0]!;
    const largest = SIZES.at(-1)!;
    assert.equal(largest.pgTextRows, 10 * smallest.pgTextRows);
    assert.equal(largest.clickhouseRows, 10 * smallest.clickhouseRows);
    assert.equal(largest.pgbenchScale, 10 * smallest.pgbenchScale);
  });

  it('ClickHouse sizes are 5, 10 and 50 million rows: the ratio is judged on the last two', () => {
    assert.deepEqual(
      SIZES.map((s) => s.clickhouseRows),
      [5_000_000, 10_000_000, 50_000_000],
    );
    assert.deepEqual(
      SIZES.filter((s) => s.clickhouseRows >= LIMITS.clickhouseMinRows).map((s) => s.label),
      ['medium', 'large'],
    );
  });

  it('BENCH_SIZES picks sizes by label in size order, all when unset, and refuses unknown labels', () => {
    assert.deepEqual(selectSizes(undefined), [...SIZES]);
    assert.deepEqual(selectSizes(''), [...SIZES]);
    assert.deepEqual(
      selectSizes('large, small').map((s) => s.label),
      ['small', 'large'],
    );
    assert.throws(() => selectSizes('small,huge'), /unknown size huge/);
  });

  it('BENCH_ONLY selects data or roll, both when unset', () => {
    assert.deepEqual(selectParts(undefined), ['data', 'roll', 'compaction', 'reset']);
    assert.deepEqual(selectParts('roll'), ['roll']);
    assert.deepEqual(selectParts('data'), ['data']);
    assert.deepEqual(selectParts('reset, compaction'), ['compaction', 'reset']);
    assert.throws(() => selectParts('kafka'), /BENCH_ONLY: unknown part kafka/);
  });
});

describe('bench targets', () => {
  it('a ratio at the limit passes, just over it fails', () => {
    assert.equal(atMost('pg', ratio(110, 100), LIMITS.postgresBackupRatio, fmtRatio).status, 'PASS');
    const over = atMost('pg', ratio(111, 100), LIMITS.postgresBackupRatio, fmtRatio);
    assert.equal(over.status, 'FAIL');
    assert.equal(over.figure, '1.110x');
    assert.equal(over.limit, '<= 1.100x');
  });

  it('a ratio against a raw figure of zero is an error, not Infinity', () => {
    assert.throws(() => ratio(5, 0), /positive raw figure/);
  });

  it('CPU per GB divides by 10^9 bytes', () => {
    assert.equal(cpuPerGb(2, 500_000_000), 4);
    assert.equal(atMost('cpu', cpuPerGb(2.1, 500_000_000), LIMITS.cpuSecondsPerGb, (n) => `${n.toFixed(2)} s/GB`).status, 'FAIL');
    assert.throws(() => cpuPerGb(1, 0), /bytes streamed/);
  });

  it('memory is flat when the largest peak is within 1.25x of the smallest, ten times less data apart', () => {
    const flat = flatMemory([
      { label: 'large', scale: 10, peakMb: 250 },
      { label: 'small', scale: 1, peakMb: 200 },
      { label: 'medium', scale: 2, peakMb: 230 },
    ]);
    assert.equal(flat.status, 'PASS');
    assert.equal(flat.figure, 'small 200 MB, medium 230 MB, large 250 MB (1.250x)');
    const growing = flatMemory([
      { label: 'small', scale: 1, peakMb: 200 },
      { label: 'large', scale: 10, peakMb: 251 },
    ]);
    assert.equal(growing.status, 'FAIL');
  });

  it('memory is not judged on sizes less than ten times apart', () => {
    const verdict = flatMemory([
      { label: 'small', scale: 1, peakMb: 200 },
      { label: 'medium', scale: 2, peakMb: 900 },
    ]);
    assert.equal(verdict.status, 'n/a');
    assert.equal(flatMemory([]).status, 'n/a');
  });

  it('the table aligns columns and fails only on a FAIL; n/a is no pass but no failure either', () => {
    const { lines, allPassed } = verdictTable([
      atMost('fixed cost', 120, LIMITS.postgresFixedCostMs, (ms) => `${ms} ms`),
      notMeasured('roll', '<= 1.200x', 'BENCH_ONLY=data'),
    ]);
    assert.equal(allPassed, true);
    assert.equal(lines.length, 3);
    assert.equal(lines[0]!.indexOf('figure'), lines[1]!.indexOf('120 ms'));
    assert.match(lines[2]!, /n\/a \(BENCH_ONLY=data\)$/);
    assert.equal(verdictTable([atMost('x', 2, 1, String)]).allPassed, false);
  });

  it('the Postgres ratio is judged only on a dump of at least 500 MB', () => {
    const judged = postgresRatio(105, 100, 600_000_000);
    assert.equal(judged.status, 'PASS');
    assert.equal(judged.note, 'dump 600 MB');
    assert.equal(postgresRatio(120, 100, 600_000_000).status, 'FAIL');
    const tooSmall = postgresRatio(120, 100, 499_000_000);
    assert.equal(tooSmall.status, 'n/a');
    assert.equal(tooSmall.figure, '1.200x');
  });

  it('seconds print with two decimals', () => {
    assert.equal(fmtSeconds(1234), '1.23 s');
  });
});
