import { StringDecoder } from 'node:string_decoder';
import { pipeline, Transform, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { IHeaders, Message, Producer } from 'kafkajs';
import type { BackupPiece } from '../../contracts/backupTypes';
import { decodeMessageLine } from './backupFormat';

const BATCH_MESSAGES = 500;
const BATCH_BYTES = 1024 * 1024;

/** The lines of a data piece, streamed: S3 → gunzip → lines; never the whole object in memory. */
export async function* pieceLines(s3: S3Client, bucket: string, piece: BackupPiece, signal: AbortSignal, onBytes: (n: number) => void): AsyncGenerator<string> {
  if (piece.size === 0) return;
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: piece.key }), { abortSignal: signal });
  const body = object.Body as Readable;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  const gunzip = createGunzip();
  const out = pipeline(body, counter, gunzip, () => undefined);
  const decoder = new StringDecoder('utf8');
  let rest = '';
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      rest += decoder.write(chunk);
      let start = 0;
      for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n', start)) {
        yield rest.slice(start, nl);
        start = nl + 1;
      }
      rest = rest.slice(start);
    }
    rest += decoder.end();
    if (rest) yield rest;
  } finally {
    if (!out.destroyed) out.destroy();
    if (!body.destroyed) body.destroy();
  }
}

interface FillRequest {
  s3: S3Client;
  bucket: string;
  producer: Producer;
  topic: string;
  partition: number;
  piece: BackupPiece;
  /** Lines already in the target (an earlier attempt's): not produced again. */
  skip: number;
  signal: AbortSignal;
  checkCancelled: () => void;
  onBytes: (n: number) => void;
  onMessages: (n: number) => void;
}

/** Produces a piece's messages, from line `skip` on, in order, to the same partition number. */
export async function fillPartition(req: FillRequest): Promise<{ lines: number; produced: number }> {
  const { producer, topic, partition } = req;
  let lines = 0;
  let produced = 0;
  let batch: Message[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (!batch.length) return;
    req.checkCancelled();
    await producer.send({ topic, acks: -1, messages: batch });
    produced += batch.length;
    req.onMessages(batch.length);
    batch = [];
    batchBytes = 0;
  };
  for await (const line of pieceLines(req.s3, req.bucket, req.piece, req.signal, req.onBytes)) {
    if (!line) continue;
    const index = lines++;
    if (index < req.skip) continue;
    const m = decodeMessageLine(line);
    batch.push({ partition, key: m.key, value: m.value, headers: m.headers as unknown as IHeaders, timestamp: m.timestamp });
    batchBytes += line.length;
    if (batch.length >= BATCH_MESSAGES || batchBytes >= BATCH_BYTES) await flush();
  }
  await flush();
  return { lines, produced };
}
