/**
 * Pure helpers for building ClickHouse SQL and checking ClickHouse's HTTP output: identifier and
 * string quoting, reading a table's PARTITION BY expression out of its engine text, validating the
 * partition values system.parts prints, and checking the framing of ClickHouse's compressed
 * (`compress=1`) HTTP output. No I/O here: everything is unit-tested in test/unit/clickhouseSql.test.ts.
 *
 * Everything in this file must work with ClickHouse 18.16 (the local stack's) and current releases.
 * 18.16 has no query parameters (`{name:Type}`), so string values are quoted here.
 */

/** A name accepted for a database or table: non-empty, no control characters, reasonably short. */
export function validateName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`${field} must be a non-empty string`);
  if (name.length > 200) throw new Error(`${field} is longer than 200 characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) throw new Error(`${field} contains control characters`);
  return name;
}

/** `name` as a back-quoted identifier; backslash and backquote escaped (both servers read `\``). */
export function quoteIdentifier(name: string): string {
  validateName(name, 'identifier');
  return `\`${name.replace(/\\/g, '\\\\').replace(/`/g, '\\`')}\``;
}

/** `db`.`table` */
export function qualifiedName(database: string, table: string): string {
  return `${quoteIdentifier(database)}.${quoteIdentifier(table)}`;
}

/** A single-quoted SQL string literal. */
export function quoteString(value: string): string {
  // eslint-disable-next-line no-control-regex
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\u0000/g, '\\0').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}'`;
}

/** Engines whose data ballast exports: the MergeTree family (plain, Replicated*, Shared*...). */
export function isMergeTreeFamily(engine: string): boolean {
  return /MergeTree$/.test(engine);
}

/** [major, minor] of a `version()` string such as "18.16.1" or "24.8.4.13". */
export function parseVersion(version: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(version.trim());
  if (!m) throw new Error(`cannot parse ClickHouse version ${JSON.stringify(version)}`);
  return [Number(m[1]), Number(m[2])];
}

// ---------------------------------------------------------------------------------------------
// A tiny scanner over ClickHouse SQL text: enough to find top-level keywords and split arguments
// while skipping string literals, quoted identifiers, comments and anything inside brackets.

/** Calls `visit` for every character index that is at depth 0 and outside quotes/comments. */
function scanTopLevel(text: string, visit: (i: number, depth: number) => boolean | void, from = 0): void {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`') {
      // Quoted: backslash escapes, and a doubled quote stands for itself.
      i++;
      while (i < text.length) {
        if (text[i] === '\\') i += 2;
        else if (text[i] === c) {
          if (text[i + 1] === c) i += 2;
          else break;
        } else i++;
      }
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? text.length : nl + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') {
      if (visit(i, depth) === true) return;
      depth++;
      i++;
      continue;
    }
    if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth < 0) throw new Error(`unbalanced brackets in ${JSON.stringify(text)}`);
      if (visit(i, depth) === true) return;
      i++;
      continue;
    }
    if (visit(i, depth) === true) return;
    i++;
  }
  if (depth !== 0) throw new Error(`unbalanced brackets in ${JSON.stringify(text)}`);
}

/** Positions where one of `keywords` (regexes matching from the start, word-bounded) starts at depth 0. */
function findTopLevelKeyword(text: string, keywords: RegExp[], from = 0): { index: number; length: number } | undefined {
  let found: { index: number; length: number } | undefined;
  scanTopLevel(
    text,
    (i, depth) => {
      if (depth !== 0) return;
      if (i > 0 && /[A-Za-z0-9_]/.test(text[i - 1]!)) return;
      const rest = text.slice(i);
      for (const kw of keywords) {
        const m = kw.exec(rest);
        if (m && m.index === 0 && !/[A-Za-z0-9_]/.test(rest[m[0].length] ?? '')) {
          found = { index: i, length: m[0].length };
          return true;
        }
      }
    },
    from,
  );
  return found;
}

/** Splits `a, f(b, c), 'd,e'` at its top-level commas (trimmed). */
export function splitTopLevelArgs(text: string): string[] {
  if (text.trim() === '') return [];
  const args: string[] = [];
  let start = 0;
  scanTopLevel(text, (i, depth) => {
    if (depth === 0 && text[i] === ',') {
      args.push(text.slice(start, i).trim());
      start = i + 1;
    }
  });
  args.push(text.slice(start).trim());
  return args;
}

const CLAUSES_AFTER_PARTITION = [/^ORDER\s+BY/i, /^PRIMARY\s+KEY/i, /^SAMPLE\s+BY/i, /^TTL/i, /^SETTINGS/i, /^COMMENT/i];

/**
 * The engine part of a table definition: from `engine_full` ("MergeTree PARTITION BY ... ORDER BY ...")
 * as is, or from a CREATE query, what follows its top-level `ENGINE =`.
 */
export function engineClause(engineFullOrCreate: string): string {
  const at = findTopLevelKeyword(engineFullOrCreate, [/^ENGINE\s*=/i]);
  return at ? engineFullOrCreate.slice(at.index + at.length).trim() : engineFullOrCreate.trim();
}

/** The arguments of the engine call at the start of an engine clause, or undefined without parentheses. */
export function engineArguments(clause: string): string[] | undefined {
  const m = /^\s*[A-Za-z_][A-Za-z0-9_]*\s*\(/.exec(clause);
  if (!m) return undefined;
  const open = m[0].length - 1;
  let close = -1;
  scanTopLevel(
    clause,
    (i, depth) => {
      if (depth === 0 && clause[i] === ')') {
        close = i;
        return true;
      }
    },
    open,
  );
  if (close < 0) throw new Error(`unbalanced engine arguments in ${JSON.stringify(clause)}`);
  return splitTopLevelArgs(clause.slice(open + 1, close));
}

/**
 * The PARTITION BY expression of a MergeTree-family table, read from its engine text
 * (`engine_full`, or a CREATE TABLE query). Returns '' for an unpartitioned table.
 *
 * Needed on ClickHouse 18.16, whose system.tables has no `partition_key` column. Handles the
 * deprecated engine syntax too (`MergeTree(date, key, 8192)`, partitioned by month of `date`).
 */
export function partitionExpression(engine: string, engineFullOrCreate: string): string {
  const clause = engineClause(engineFullOrCreate);
  const at = findTopLevelKeyword(clause, [/^PARTITION\s+BY/i]);
  if (at) {
    const from = at.index + at.length;
    const end = findTopLevelKeyword(clause, CLAUSES_AFTER_PARTITION, from);
    const expr = clause.slice(from, end ? end.index : undefined).trim();
    if (!expr) throw new Error(`empty PARTITION BY in ${JSON.stringify(clause)}`);
    return expr;
  }
  // The old syntax: Engine([zk_path, replica,] date_column, [sampling,] primary_key, granularity[, ...]).
  const args = engineArguments(clause);
  if (args && !findTopLevelKeyword(clause, [/^ORDER\s+BY/i])) {
    const rest = engine.startsWith('Replicated') ? args.slice(2) : args;
    if (rest.length >= 3) return `toYYYYMM(${rest[0]})`;
  }
  return '';
}

// ---------------------------------------------------------------------------------------------
// Partition values, as system.parts' `partition` column prints them: SQL literals such as 202601,
// '2026-01-01', -3, 1.5, (202601, 'eu'), tuple(). Validated before being compared in a WHERE so
// that only literal text reaches the query.

/** True when `text` is one SQL literal: number, string, NULL, tuple or array of literals. */
export function isSqlLiteral(text: string): boolean {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const literal = (): boolean => {
    ws();
    const c = text[i];
    if (c === undefined) return false;
    if (c === "'") {
      i++;
      while (i < text.length) {
        if (text[i] === '\\') i += 2;
        else if (text[i] === "'") {
          if (text[i + 1] === "'") i += 2;
          else {
            i++;
            return true;
          }
        } else i++;
      }
      return false;
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return c === '[';
      }
      for (;;) {
        if (!literal()) return false;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return true;
        }
        return false;
      }
    }
    const word = /^(?:tuple\(\s*\)|NULL|[-+]?(?:inf|nan)|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?0x[0-9A-Fa-f]+)/i.exec(text.slice(i));
    if (!word) return false;
    i += word[0].length;
    return true;
  };
  if (!literal()) return false;
  ws();
  return i === text.length;
}

/** The WHERE condition selecting one partition on a server without `_partition_id` (18.16). */
export function partitionCondition(expression: string, partition: string): string | undefined {
  if (!expression || partition === 'tuple()') return undefined;
  if (!isSqlLiteral(partition)) throw new Error(`unexpected partition value ${JSON.stringify(partition)}`);
  return `(${expression}) = ${partition}`;
}

// ---------------------------------------------------------------------------------------------
// ClickHouse's compressed HTTP format (`compress=1` on a query, `decompress=1` on an insert): a
// sequence of blocks, each a 16-byte CityHash128 checksum, a method byte (0x82 LZ4, 0x90 ZSTD,
// 0x02 none), the compressed size (UInt32 LE, counting the 9 header bytes from the method byte
// on) and the decompressed size (UInt32 LE), then the compressed bytes.

export const COMPRESSED_CHECKSUM_SIZE = 16;
export const COMPRESSED_HEADER_SIZE = 9;
const MAX_COMPRESSED_BLOCK = 0x40000000; // ClickHouse's own limit (1 GiB)

export const COMPRESSION_METHODS: Record<number, string> = { 0x82: 'lz4', 0x90: 'zstd', 0x02: 'none' };

export interface CompressedBlockHeader {
  method: string;
  /** Bytes of the whole block: checksum, header and compressed data. */
  blockSize: number;
  decompressedSize: number;
}

/** Reads the header of the block starting at `at` (needs 25 bytes there). */
export function readCompressedBlockHeader(buf: Buffer, at = 0): CompressedBlockHeader {
  const methodByte = buf[at + COMPRESSED_CHECKSUM_SIZE]!;
  const method = COMPRESSION_METHODS[methodByte];
  if (!method) throw new Error(`not ClickHouse compressed data: unknown method byte 0x${methodByte.toString(16)}`);
  const compressedSize = buf.readUInt32LE(at + COMPRESSED_CHECKSUM_SIZE + 1);
  const decompressedSize = buf.readUInt32LE(at + COMPRESSED_CHECKSUM_SIZE + 5);
  if (compressedSize < COMPRESSED_HEADER_SIZE || compressedSize > MAX_COMPRESSED_BLOCK || decompressedSize > MAX_COMPRESSED_BLOCK) {
    throw new Error(`not ClickHouse compressed data: block sizes ${compressedSize}/${decompressedSize} out of range`);
  }
  if (method === 'none' && decompressedSize !== compressedSize - COMPRESSED_HEADER_SIZE) {
    throw new Error('not ClickHouse compressed data: uncompressed block with inconsistent sizes');
  }
  return { method, blockSize: COMPRESSED_CHECKSUM_SIZE + compressedSize, decompressedSize };
}

/** Decompresses one raw LZ4 block (no frame) of known decompressed size. */
export function lz4DecompressBlock(src: Buffer, decompressedSize: number): Buffer {
  const dst = Buffer.alloc(decompressedSize);
  let s = 0;
  let d = 0;
  const fail = (why: string): never => {
    throw new Error(`corrupt LZ4 block: ${why}`);
  };
  while (s < src.length) {
    const token = src[s++]!;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (s >= src.length) fail('truncated literal length');
        b = src[s++]!;
        literals += b;
      } while (b === 255);
    }
    if (s + literals > src.length || d + literals > dst.length) fail('literals overrun');
    src.copy(dst, d, s, s + literals);
    s += literals;
    d += literals;
    if (s >= src.length) break; // the last sequence holds literals only
    if (s + 2 > src.length) fail('truncated match offset');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) fail('match offset out of range');
    let length = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= src.length) fail('truncated match length');
        b = src[s++]!;
        length += b;
      } while (b === 255);
    }
    if (d + length > dst.length) fail('match overrun');
    for (let k = 0; k < length; k++, d++) dst[d] = dst[d - offset]!;
  }
  if (d !== dst.length) fail(`decompressed ${d} bytes, header says ${dst.length}`);
  return dst;
}

/**
 * An exception ClickHouse wrote into the body of a response that had already started (its HTTP
 * status was sent as 200): the message is the last thing in the stream, ending with a newline.
 * 18.16 writes "Code: 395, e.displayText() = DB::Exception: ...", current releases
 * "Code: 395. DB::Exception: ...". Only the tail of the last block is searched.
 */
export function trailingException(tail: Buffer): string | undefined {
  const text = tail.subarray(Math.max(0, tail.length - 8192)).toString('latin1');
  if (!text.endsWith('\n')) return undefined;
  const m = /Code: \d+(?:, e\.displayText\(\) = |\. )DB::Exception: [^\n]*\n?[^\n]*\n$/.exec(text);
  return m ? m[0].trim() : undefined;
}

/** Blocks up to this size are kept until the next one starts, so the last can be inspected. */
const KEEP_LAST_BLOCK_LIMIT = 4 * 1024 * 1024;

export interface CompressedStreamSummary {
  blocks: number;
  compressedBytes: number;
  decompressedBytes: number;
  methods: string[];
}

/**
 * Follows the block framing of a compressed ClickHouse stream chunk by chunk, without holding
 * more than the last (small) block: it proves the stream ends on a block boundary (a cut
 * connection does not pass for a complete export) and lets the caller look inside the last block,
 * where ClickHouse writes an exception that happened after it had started answering.
 */
export class CompressedFrameReader {
  private blocks = 0;
  private compressedBytes = 0;
  private decompressedBytes = 0;
  private readonly methods = new Set<string>();
  private header: Buffer = Buffer.alloc(0);
  private current: CompressedBlockHeader | undefined;
  private remaining = 0;
  private kept: Buffer[] | undefined;
  // The last block's chunks, joined only when asked for: copying every block would double the
  // worker's memory traffic for nothing.
  private last: { header: CompressedBlockHeader; chunks: Buffer[] } | undefined;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.current) {
        const n = Math.min(this.remaining, chunk.length - at);
        this.kept?.push(chunk.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.finishBlock();
        continue;
      }
      const want = COMPRESSED_CHECKSUM_SIZE + COMPRESSED_HEADER_SIZE - this.header.length;
      const n = Math.min(want, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      if (this.header.length === COMPRESSED_CHECKSUM_SIZE + COMPRESSED_HEADER_SIZE) {
        this.current = readCompressedBlockHeader(this.header);
        this.remaining = this.current.blockSize - this.header.length;
        this.kept = this.current.blockSize <= KEEP_LAST_BLOCK_LIMIT ? [this.header] : undefined;
        if (this.remaining === 0) this.finishBlock();
      }
    }
  }

  private finishBlock(): void {
    const header = this.current!;
    this.blocks++;
    this.compressedBytes += header.blockSize;
    this.decompressedBytes += header.decompressedSize;
    this.methods.add(header.method);
    this.last = this.kept ? { header, chunks: this.kept } : undefined;
    this.kept = undefined;
    this.current = undefined;
    this.header = Buffer.alloc(0);
  }

  /** Throws unless the stream ended exactly at a block boundary. */
  end(): CompressedStreamSummary {
    if (this.current || this.header.length > 0) {
      throw new Error(`compressed stream cut short inside block ${this.blocks + 1} (after ${this.compressedBytes} complete bytes)`);
    }
    return {
      blocks: this.blocks,
      compressedBytes: this.compressedBytes,
      decompressedBytes: this.decompressedBytes,
      methods: [...this.methods],
    };
  }

  /** The decompressed content of the last block, when it was small enough to keep and not ZSTD. */
  lastBlockContent(): Buffer | undefined {
    if (!this.last) return undefined;
    const { header, chunks } = this.last;
    const payload = Buffer.concat(chunks).subarray(COMPRESSED_CHECKSUM_SIZE + COMPRESSED_HEADER_SIZE);
    if (header.method === 'none') return payload;
    if (header.method === 'lz4') return lz4DecompressBlock(payload, header.decompressedSize);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// CityHash128 as ClickHouse uses it for its compressed-block checksums: Google's CityHash v1.0.2
// (ClickHouse keeps that old version; later CityHash releases hash differently). Only used to
// frame small blocks the worker writes itself, so plain BigInt arithmetic is fast enough.

const M64 = (1n << 64n) - 1n;
const K0 = 0xc3a5c85c97cb3127n;
const K1 = 0xb492b66fbe98f273n;
const K2 = 0x9ae16a3b2f90404fn;
const K3 = 0xc949d7c7509e6557n;
const KMUL = 0x9ddfea08eb382d69n;

const mul = (a: bigint, b: bigint) => (a * b) & M64;
const add = (...xs: bigint[]) => xs.reduce((s, x) => s + x, 0n) & M64;
const rotate = (v: bigint, shift: number) => (shift === 0 ? v : ((v >> BigInt(shift)) | (v << BigInt(64 - shift))) & M64);
const shiftMix = (v: bigint) => v ^ (v >> 47n);

function hashLen16(u: bigint, v: bigint): bigint {
  let a = mul(u ^ v, KMUL);
  a ^= a >> 47n;
  let b = mul(v ^ a, KMUL);
  b ^= b >> 47n;
  return mul(b, KMUL);
}

function hashLen0to16(s: Buffer, at: number, len: number): bigint {
  if (len > 8) {
    const a = s.readBigUInt64LE(at);
    const b = s.readBigUInt64LE(at + len - 8);
    // RotateByAtLeast1: len is 9..16 here, never 0.
    return hashLen16(a, rotate(add(b, BigInt(len)), len)) ^ b;
  }
  if (len >= 4) {
    const a = BigInt(s.readUInt32LE(at));
    return hashLen16(add(BigInt(len), a << 3n), BigInt(s.readUInt32LE(at + len - 4)));
  }
  if (len > 0) {
    const a = s[at]!;
    const b = s[at + (len >> 1)]!;
    const c = s[at + len - 1]!;
    const y = BigInt((a + (b << 8)) >>> 0);
    const z = BigInt((len + (c << 2)) >>> 0);
    return mul(shiftMix(mul(y, K2) ^ mul(z, K3)), K2);
  }
  return K2;
}

function weakHashLen32WithSeeds(s: Buffer, at: number, a: bigint, b: bigint): [bigint, bigint] {
  const w = s.readBigUInt64LE(at);
  const x = s.readBigUInt64LE(at + 8);
  const y = s.readBigUInt64LE(at + 16);
  const z = s.readBigUInt64LE(at + 24);
  a = add(a, w);
  b = rotate(add(b, a, z), 21);
  const c = a;
  a = add(a, x, y);
  b = add(b, rotate(a, 44));
  return [add(a, z), add(b, c)];
}

function cityMurmur(s: Buffer, at: number, len: number, seedLow: bigint, seedHigh: bigint): [bigint, bigint] {
  let a = seedLow;
  let b = seedHigh;
  let c: bigint;
  let d: bigint;
  let l = len - 16;
  if (l <= 0) {
    a = mul(shiftMix(mul(a, K1)), K1);
    c = add(mul(b, K1), hashLen0to16(s, at, len));
    d = shiftMix(add(a, len >= 8 ? s.readBigUInt64LE(at) : c));
  } else {
    c = hashLen16(add(s.readBigUInt64LE(at + len - 8), K1), a);
    d = hashLen16(add(b, BigInt(len)), add(c, s.readBigUInt64LE(at + len - 16)));
    a = add(a, d);
    let p = at;
    do {
      a ^= mul(shiftMix(mul(s.readBigUInt64LE(p), K1)), K1);
      a = mul(a, K1);
      b ^= a;
      c ^= mul(shiftMix(mul(s.readBigUInt64LE(p + 8), K1)), K1);
      c = mul(c, K1);
      d ^= c;
      p += 16;
      l -= 16;
    } while (l > 0);
  }
  a = hashLen16(a, c);
  b = hashLen16(d, b);
  return [a ^ b, hashLen16(b, a)];
}

function cityHash128WithSeed(s: Buffer, at: number, len: number, seedLow: bigint, seedHigh: bigint): [bigint, bigint] {
  if (len < 128) return cityMurmur(s, at, len, seedLow, seedHigh);
  let x = seedLow;
  let y = seedHigh;
  let z = mul(BigInt(len), K1);
  const v: [bigint, bigint] = [0n, 0n];
  const w: [bigint, bigint] = [0n, 0n];
  v[0] = add(mul(rotate(y ^ K1, 49), K1), s.readBigUInt64LE(at));
  v[1] = add(mul(rotate(v[0], 42), K1), s.readBigUInt64LE(at + 8));
  w[0] = add(mul(rotate(add(y, z), 35), K1), x);
  w[1] = mul(rotate(add(x, s.readBigUInt64LE(at + 88)), 53), K1);
  let p = at;
  const round = () => {
    x = mul(rotate(add(x, y, v[0], s.readBigUInt64LE(p + 16)), 37), K1);
    y = mul(rotate(add(y, v[1], s.readBigUInt64LE(p + 48)), 42), K1);
    x ^= w[1];
    y ^= v[0];
    z = rotate(z ^ w[0], 33);
    const nv = weakHashLen32WithSeeds(s, p, mul(v[1], K1), add(x, w[0]));
    const nw = weakHashLen32WithSeeds(s, p + 32, add(z, w[1]), y);
    [v[0], v[1]] = nv;
    [w[0], w[1]] = nw;
    [z, x] = [x, z];
    p += 64;
  };
  do {
    round();
    round();
    len -= 128;
  } while (len >= 128);
  y = add(y, mul(rotate(w[0], 37), K0), z);
  x = add(x, mul(rotate(add(v[0], z), 49), K0));
  for (let tailDone = 0; tailDone < len; ) {
    tailDone += 32;
    y = add(mul(rotate((y - x) & M64, 42), K0), v[1]);
    w[0] = add(w[0], s.readBigUInt64LE(p + len - tailDone + 16));
    x = add(mul(rotate(x, 49), K0), w[0]);
    w[0] = add(w[0], v[0]);
    const nv = weakHashLen32WithSeeds(s, p + len - tailDone, v[0], v[1]);
    [v[0], v[1]] = nv;
  }
  x = hashLen16(x, v[0]);
  y = hashLen16(y, w[0]);
  return [add(hashLen16(add(x, v[1]), w[1]), y), hashLen16(add(x, w[1]), add(y, v[1]))];
}

/** CityHash128 v1.0.2 of `data`: [low64, high64]. */
export function cityHash128(data: Buffer): [bigint, bigint] {
  const len = data.length;
  if (len >= 16) {
    return cityHash128WithSeed(data, 16, len - 16, data.readBigUInt64LE(0) ^ K3, data.readBigUInt64LE(8));
  }
  if (len >= 8) {
    return cityHash128WithSeed(data, 0, 0, data.readBigUInt64LE(0) ^ mul(BigInt(len), K0), data.readBigUInt64LE(len - 8) ^ K1);
  }
  return cityHash128WithSeed(data, 0, len, K0, K1);
}

/**
 * `data` as one ClickHouse compressed block stored without compression (method 0x02): what
 * `decompress=1` reads like any LZ4 block. Used where the server could not compress for us.
 */
export function uncompressedBlock(data: Buffer): Buffer {
  const block = Buffer.alloc(COMPRESSED_CHECKSUM_SIZE + COMPRESSED_HEADER_SIZE + data.length);
  block[COMPRESSED_CHECKSUM_SIZE] = 0x02;
  block.writeUInt32LE(COMPRESSED_HEADER_SIZE + data.length, COMPRESSED_CHECKSUM_SIZE + 1);
  block.writeUInt32LE(data.length, COMPRESSED_CHECKSUM_SIZE + 5);
  data.copy(block, COMPRESSED_CHECKSUM_SIZE + COMPRESSED_HEADER_SIZE);
  const [low, high] = cityHash128(block.subarray(COMPRESSED_CHECKSUM_SIZE));
  block.writeBigUInt64LE(low, 0);
  block.writeBigUInt64LE(high, 8);
  return block;
}

/** Whether a block's stored checksum matches its content (CityHash128 v1.0.2). */
export function blockChecksumMatches(block: Buffer): boolean {
  const [low, high] = cityHash128(block.subarray(COMPRESSED_CHECKSUM_SIZE));
  return block.readBigUInt64LE(0) === low && block.readBigUInt64LE(8) === high;
}
