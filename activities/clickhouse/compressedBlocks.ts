/**
 * ClickHouse's compressed HTTP format (`compress=1` on a query, `decompress=1` on an insert): a
 * sequence of blocks, each a 16-byte CityHash128 checksum, a method byte (0x82 LZ4, 0x90 ZSTD,
 * 0x02 none), the compressed size (UInt32 LE, counting the 9 header bytes from the method byte
 * on) and the decompressed size (UInt32 LE), then the compressed bytes. Checking the framing of
 * what the server sends, and framing what the worker writes itself. No I/O here: unit-tested in
 * test/unit/clickhouseSql.test.ts.
 */
import { cityHash128 } from './cityHash';

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
