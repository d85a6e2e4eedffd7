/**
 * A stream's bytes into one object of the backup bucket, with their size and sha256, for as
 * little of the worker's CPU as the bytes allow: every backup's data passes through here.
 *
 * - Each chunk is copied once, into a reused part buffer: no per-part concatenation into a fresh
 *   buffer (page faults and a second copy) and no async iteration per chunk, as lib-storage's
 *   Upload does. pg_dump writes 4 KiB at a time, so the per-chunk cost is what counts there.
 * - sha256 is updated once per part, over the part buffer, in order.
 * - The parts are sent with an unsigned payload: SigV4 would otherwise hash every part again
 *   (sha256) only to sign it. The stored bytes are the recorded sha256's, and a restore's plan
 *   reads every object back against it; over HTTPS, TLS guards the bytes in transit. The S3
 *   client computes no CRC32 of its own either (workers/connections.ts).
 *
 * Objects up to one part are written with one PutObject, larger ones as a multipart upload of
 * PART_SIZE parts, as lib-storage did: the same objects, part for part.
 *
 * A program's output (pg_dump's) comes through a FIFO, read with fs.read straight into the part
 * buffers (uploadObjectFromFd): a stream would allocate a buffer per read.
 */
import { createHash } from 'node:crypto';
import { read } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/** Memory per upload is at most PART_SIZE × (PARTS_IN_FLIGHT + 1): 24 MiB, whatever the size. */
export const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * Part buffers outlive their upload, up to this many: a fresh buffer costs a page fault per 4 KiB
 * written into it (as much CPU as the sha256 of those bytes), and a table's partitions are many
 * short uploads. Bounded, so the worker's memory stays flat (48 MiB kept at most).
 */
const SPARE_PARTS_KEPT = 6;
const spareParts: Buffer[] = [];

function partBuffer(): Buffer {
  return spareParts.pop() ?? Buffer.allocUnsafeSlow(PART_SIZE);
}

function releasePart(buffer: Buffer): void {
  if (spareParts.length < SPARE_PARTS_KEPT) spareParts.push(buffer);
}

export interface StreamedObject {
  size: number;
  sha256: string;
}

/**
 * What a caller sees of the bytes on their way, without a stream stage of its own: a Transform
 * costs per chunk, and ClickHouse 18.16 and pg_dump both deliver 4 KiB chunks.
 */
export interface UploadWatch {
  /** The bytes so far, after each chunk: progress for heartbeats. */
  onBytes?: (total: number) => void;
  /** Every chunk, in order, before it is stored; throwing fails the upload. */
  onChunk?: (chunk: Buffer) => void;
  /** Once every byte is in, before the object is completed; throwing fails it, and nothing is stored. */
  beforeComplete?: () => void;
}

/** The part of a command's middleware stack used here; the SDK's own type is a union per step. */
interface BuildStep {
  add(
    middleware: (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => Promise<unknown>,
    options: { step: 'build'; name: string },
  ): void;
}

/** Signs the request without hashing its body (see the module comment). */
function unsignedPayload<C extends PutObjectCommand | UploadPartCommand>(command: C): C {
  (command.middlewareStack as unknown as BuildStep).add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'ballastUnsignedPayload' },
  );
  return command;
}

/**
 * The writable end of an upload. The object exists only once the stream has finished: a stream
 * destroyed before (its source failed, a part failed) aborts the multipart upload once every part
 * in flight has settled, so no part outlives it; `settled` resolves when that is done.
 */
class ObjectUploadSink extends Writable {
  private readonly hash = createHash('sha256');
  size = 0;
  sha256: string | undefined;
  private part: Buffer | undefined;
  private filled = 0;
  private partNumber = 0;
  private uploadId: Promise<string> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly parts: { PartNumber: number; ETag: string }[] = [];
  private completed = false;
  private settle!: () => void;
  readonly settled = new Promise<void>((resolve) => (this.settle = resolve));

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly watch: UploadWatch,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    try {
      this.watch.onChunk?.(chunk);
    } catch (err) {
      done(err as Error);
      return;
    }
    this.size += chunk.length;
    this.watch.onBytes?.(this.size);
    this.take(chunk, 0, done);
  }

  /** Copies `chunk` from `at` into parts, sending each full one as more arrives; waits for a free slot. */
  private take(chunk: Buffer, at: number, done: (err?: Error | null) => void): void {
    // Destroyed while this chunk waited for a slot: the clean-up has aborted the upload, and no
    // part may start after it.
    if (this.destroyed) return done();
    while (at < chunk.length) {
      if (this.part && this.filled === PART_SIZE) {
        // Full, and more is coming: not the last part.
        if (this.inFlight.size >= PARTS_IN_FLIGHT) {
          Promise.race(this.inFlight).then(() => this.take(chunk, at, done), done);
          return;
        }
        this.sendPart();
      }
      this.part ??= partBuffer();
      const n = chunk.copy(this.part, this.filled, at);
      this.filled += n;
      at += n;
    }
    done();
  }

  /**
   * Reads `fd` to its end straight into part buffers (no buffer per read: see
   * startProcessIntoFifo). A full part is sent only once more bytes follow, so an object of one
   * part is one PutObject, as from a stream; the next part is read only once a slot is free.
   */
  async fillFrom(fd: number): Promise<void> {
    this.part ??= partBuffer();
    for (;;) {
      if (this.errored) throw this.errored;
      if (this.filled < PART_SIZE) {
        const n = await readInto(fd, this.part, this.filled, PART_SIZE - this.filled);
        if (n === 0) return;
        this.took(n);
        continue;
      }
      while (this.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inFlight);
      const next = partBuffer();
      const n = await readInto(fd, next, 0, PART_SIZE);
      if (n === 0) {
        releasePart(next);
        return;
      }
      this.sendPart();
      this.part = next;
      this.took(n);
    }
  }

  private took(n: number): void {
    this.filled += n;
    this.size += n;
    this.watch.onBytes?.(this.size);
  }

  /** Completes the object once every byte is in (the Writable's end does this itself). */
  complete(): Promise<void> {
    return this.finish();
  }

  /** Hashes the part being filled and starts its upload; its buffer is reused once it is sent. */
  private sendPart(): void {
    const buffer = this.part!;
    const body = buffer.subarray(0, this.filled);
    this.hash.update(body);
    this.part = undefined;
    this.filled = 0;
    const partNumber = ++this.partNumber;
    this.uploadId ??= this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key })).then((r) => r.UploadId!);
    const sent = this.uploadId
      .then((UploadId) =>
        this.s3.send(
          unsignedPayload(
            new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }),
          ),
        ),
      )
      .then((r) => {
        if (!r.ETag) throw new Error(`part ${partNumber} of ${this.key} has no ETag`);
        this.parts.push({ PartNumber: partNumber, ETag: r.ETag });
        releasePart(buffer);
      });
    const tracked = sent.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    // The first failure ends the stream; _destroy cleans up.
    tracked.catch((err: Error) => this.destroy(err));
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finish().then(() => done(), done);
  }

  private async finish(): Promise<void> {
    this.watch.beforeComplete?.();
    if (this.partNumber === 0) {
      const body = this.part ? this.part.subarray(0, this.filled) : Buffer.alloc(0);
      this.hash.update(body);
      await this.s3.send(unsignedPayload(new PutObjectCommand({ Bucket: this.bucket, Key: this.key, Body: body, ContentLength: body.length })));
      if (this.part) releasePart(this.part);
      this.part = undefined;
    } else {
      this.sendPart();
      while (this.inFlight.size > 0) await Promise.all(this.inFlight);
      const UploadId = await this.uploadId!;
      const Parts = [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
      await this.s3.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId, MultipartUpload: { Parts } }));
    }
    this.completed = true;
    this.sha256 = this.hash.digest('hex');
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.cleanUp().then(
      () => {
        this.settle();
        done(err);
      },
      () => {
        this.settle();
        done(err);
      },
    );
  }

  private async cleanUp(): Promise<void> {
    if (this.part) releasePart(this.part);
    this.part = undefined;
    await Promise.allSettled([...this.inFlight]);
    if (this.completed || !this.uploadId) return;
    const UploadId = await this.uploadId.catch(() => undefined);
    if (UploadId) await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId })).catch(() => undefined);
  }
}

function readInto(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n))));
}

/**
 * Reads a descriptor (a FIFO a program writes into) to its end straight into the upload's part
 * buffers, then completes the object at `key` only once `ended` (the program's exit) resolves: a
 * program that fails leaves no object. Size and sha256 of exactly the stored bytes.
 */
export async function uploadObjectFromFd(s3: S3Client, bucket: string, key: string, fd: number, ended: Promise<void>, watch: UploadWatch = {}): Promise<StreamedObject> {
  const sink = new ObjectUploadSink(s3, bucket, key, watch);
  // No stream is piped into it: its failure reaches the caller as this function's rejection.
  sink.on('error', () => undefined);
  try {
    await sink.fillFrom(fd);
    await ended;
    await sink.complete();
  } catch (err) {
    sink.destroy(err as Error);
    await sink.settled;
    throw err;
  }
  return { size: sink.size, sha256: sink.sha256! };
}

/**
 * Streams `source` into the object at `key`: size and sha256 of exactly the stored bytes. Fails,
 * writing nothing, if the source fails; never buffers the data whole.
 */
export async function uploadObjectStream(s3: S3Client, bucket: string, key: string, source: Readable, watch: UploadWatch = {}): Promise<StreamedObject> {
  const sink = new ObjectUploadSink(s3, bucket, key, watch);
  try {
    await pipeline(source, sink);
  } catch (err) {
    sink.destroy(err as Error);
    await sink.settled;
    throw err;
  }
  return { size: sink.size, sha256: sink.sha256! };
}
