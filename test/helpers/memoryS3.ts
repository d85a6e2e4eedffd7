import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** An S3 client that keeps objects in memory: enough for putJson and a whole-object GET. */
export function memoryS3(): { s3: S3Client; objects: Map<string, Buffer> } {
  const objects = new Map<string, Buffer>();
  const send = async (command: unknown) => {
    if (command instanceof PutObjectCommand) {
      objects.set(command.input.Key!, Buffer.from(command.input.Body as Buffer));
      return {};
    }
    if (command instanceof GetObjectCommand) {
      const bytes = objects.get(command.input.Key!);
      if (!bytes) throw Object.assign(new Error('no such key'), { name: 'NoSuchKey' });
      return { Body: { transformToByteArray: async () => new Uint8Array(bytes) } };
    }
    throw new Error(`unexpected command ${String(command)}`);
  };
  return { s3: { send } as unknown as S3Client, objects };
}
