import { strict as assert } from 'node:assert';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { DeleteObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcessIntoFifo } from '../../activities/common/process';
import { PART_SIZE, uploadObjectFromFd, uploadObjectStream } from '../../activities/storage/objectUpload';
import { loadConfig } from '../../workers/config';
import { createConnections } from '../../workers/connections';
import { objectBytes, sha256 } from '../helpers/backupBucket';

// Real MinIO. Keys under a prefix of this run's own, all deleted afterwards.
const PREFIX = `test-objectupload-${randomUUID()}/`;

/** `bytes` as a stream of chunks of `chunkSize`, the way pg_dump or ClickHouse deliver them. */
function chunked(bytes: Buffer, chunkSize: number): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

describe('uploadObjectStream and uploadObjectFromFd (real object store)', () => {
  let s3: S3Client;
  let bucket: string;
  const keys: string[] = [];
  const key = (name: string) => {
    keys.push(`${PREFIX}${name}`);
    return `${PREFIX}${name}`;
  };
  const pendingUploads = async (k: string) =>
    ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: k }))).Uploads ?? []).filter((u) => u.Key === k);
  const exists = async (k: string) =>
    s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k })).then(
      () => true,
      () => false,
    );

  before(() => {
    const loaded = loadConfig();
    bucket = loaded.config.objectStore.backupBucket;
    s3 = createConnections(loaded.config, loaded.path).s3();
  });

  after(async () => {
    for (const k of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k })).catch(() => undefined);
    s3.destroy();
  });

  // Around the part size: one PutObject up to PART_SIZE, parts of PART_SIZE above it.
  const sizes: [string, number, string | undefined][] = [
    ['empty', 0, undefined],
    ['small', 1000, undefined],
    ['one part exactly', PART_SIZE, undefined],
    ['one byte over a part', PART_SIZE + 1, '-2'],
    ['two parts exactly', 2 * PART_SIZE, '-2'],
    ['several parts', 3 * PART_SIZE + 12345, '-4'],
  ];
  /** A program (cat) writing `bytes` into a FIFO, read by uploadObjectFromFd, as pg_dump's output is. */
  async function fromProgram(k: string, bytes: Buffer, onBytes: (n: number) => void) {
    const dir = mkdtempSync(join(tmpdir(), 'objectupload-'));
    try {
      writeFileSync(join(dir, 'source'), bytes);
      const program = await startProcessIntoFifo('cat', 'cat', [join(dir, 'source')]);
      try {
        return await uploadObjectFromFd(s3, bucket, k, program.fd, program.done, { onBytes });
      } finally {
        program.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  for (const [label, size, multipart] of sizes) for (const from of ['a stream', 'a program through a FIFO'] as const) {
    it(`stores exactly the bytes, with their size and sha256, from ${from}: ${label} (${size} bytes)`, async () => {
      const bytes = randomBytes(size);
      const k = key(`${label.replace(/ /g, '-')}-${from === 'a stream' ? 'stream' : 'fifo'}`);
      const seen: number[] = [];
      const onBytes = (n: number) => seen.push(n);
      const stored = from === 'a stream' ? await uploadObjectStream(s3, bucket, k, chunked(bytes, 4096 + 17), { onBytes }) : await fromProgram(k, bytes, onBytes);
      assert.equal(stored.size, size);
      assert.equal(stored.sha256, sha256(bytes));
      assert.ok((await objectBytes(s3, bucket, k)).equals(bytes), 'the stored object differs from the source');
      const etag = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: k }))).ETag ?? '';
      if (multipart) assert.ok(etag.endsWith(`${multipart}"`), `ETag ${etag}: expected a multipart upload of ${multipart.slice(1)} parts`);
      else assert.ok(!etag.includes('-'), `ETag ${etag}: expected a single PutObject`);
      if (size > 0) assert.equal(seen.at(-1), size);
    });
  }

  it('writes nothing and leaves no parts behind when the source fails after some parts', async () => {
    const k = key('failing-source');
    const bytes = randomBytes(2 * PART_SIZE + 5000);
    async function* failing() {
      yield bytes;
      throw new Error('the source broke');
    }
    await assert.rejects(uploadObjectStream(s3, bucket, k, Readable.from(failing(), { objectMode: false })), /the source broke/);
    assert.equal(await exists(k), false);
    assert.deepEqual(await pendingUploads(k), []);
  });

  it('from a program that fails after writing some parts: writes nothing, leaves no parts behind, and names the failure', async () => {
    const k = key('failing-program');
    const dir = mkdtempSync(join(tmpdir(), 'objectupload-'));
    try {
      writeFileSync(join(dir, 'source'), randomBytes(2 * PART_SIZE + 5000));
      const program = await startProcessIntoFifo('the dump', 'sh', ['-c', 'cat "$0"; echo "disk full" >&2; exit 3', join(dir, 'source')]);
      try {
        await assert.rejects(uploadObjectFromFd(s3, bucket, k, program.fd, program.done), /the dump failed \(exit 3\): disk full/);
      } finally {
        program.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(await exists(k), false);
    assert.deepEqual(await pendingUploads(k), []);
  });

  it('writes nothing when a check before completion fails, and passes every chunk to onChunk in order', async () => {
    const k = key('refused');
    const bytes = randomBytes(PART_SIZE + 3000);
    const seen: Buffer[] = [];
    await assert.rejects(
      uploadObjectStream(s3, bucket, k, chunked(bytes, 65536), {
        onChunk: (chunk) => seen.push(Buffer.from(chunk)),
        beforeComplete: () => {
          throw new Error('the stream ended badly');
        },
      }),
      /the stream ended badly/,
    );
    assert.ok(Buffer.concat(seen).equals(bytes));
    assert.equal(await exists(k), false);
    assert.deepEqual(await pendingUploads(k), []);
  });
});
