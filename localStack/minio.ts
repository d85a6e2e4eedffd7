import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, HeadBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { ensureTool, type CachedTool } from './cachedTools';
import { hasProgram, runCommand, runLogged } from './commands';
import { StackError } from './errors';
import { healthTimeoutMs, processStatus, waitHealthy } from './health';
import { logFile, serviceDir } from './paths';
import { runningPid, spawnService, stopProcess } from './processes';
import type { StackContext, StackService } from './service';

const MODULE = 'github.com/minio/minio';
/** MinIO publishes no tagged Go module versions; this pseudo-version pins one commit. */
const MODULE_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

const dataDir = path.join(serviceDir('minio'), 'data');

const minioBinary: CachedTool = {
  name: 'minio',
  // The pseudo-version's timestamp names the cache folder (minio-20260212201848).
  version: MODULE_VERSION.split('-')[1] ?? MODULE_VERSION,
  build: async (dir) => {
    if (!(await hasProgram('go'))) {
      throw new StackError('building MinIO needs a Go toolchain (go 1.24 or newer) on PATH');
    }
    await runLogged('go', ['install', `${MODULE}@${MODULE_VERSION}`], logFile('install-minio'), {
      env: { ...process.env, GOBIN: path.join(dir, 'bin') },
      timeoutMs: 30 * 60_000,
    });
  },
  // The module path and version are embedded by the Go linker: a truncated or foreign binary has neither.
  verify: async (dir) => {
    try {
      const info = await runCommand('go', ['version', '-m', binary(dir)]);
      return new RegExp(`mod\\s+${MODULE}\\s+${MODULE_VERSION}`).test(info);
    } catch {
      return false;
    }
  },
};

function binary(dir: string): string {
  return path.join(dir, 'bin', 'minio');
}

function s3Client(ctx: StackContext): S3Client {
  const { endpoint, region, forcePathStyle } = ctx.loaded.config.objectStore;
  return new S3Client({
    endpoint,
    region,
    forcePathStyle,
    credentials: { accessKeyId: ctx.secrets.minioRootUser, secretAccessKey: ctx.secrets.minioRootPassword },
    maxAttempts: 1,
  });
}

function allBuckets(ctx: StackContext): string[] {
  const { buckets, backupBucket } = ctx.loaded.config.objectStore;
  return [...new Set([...buckets, backupBucket])];
}

/** A signed S3 request, so wrong credentials count as unhealthy too. */
async function checkHealth(ctx: StackContext): Promise<void> {
  const s3 = s3Client(ctx);
  try {
    await s3.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(healthTimeoutMs(ctx)) });
  } finally {
    s3.destroy();
  }
}

async function ensureBuckets(ctx: StackContext): Promise<void> {
  const s3 = s3Client(ctx);
  try {
    for (const bucket of allBuckets(ctx)) {
      try {
        await s3.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
        ctx.log(`minio: creating bucket ${bucket}`);
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      }
    }
  } finally {
    s3.destroy();
  }
}

export const minio: StackService = {
  name: 'minio',

  async install(ctx) {
    await ensureTool(minioBinary, ctx.log);
  },

  async start(ctx) {
    const bin = binary(await ensureTool(minioBinary, ctx.log));
    const { host, port, consolePort } = ctx.ports.minio;
    if (runningPid('minio') === undefined) {
      mkdirSync(dataDir, { recursive: true });
      ctx.log(`minio: starting on ${host}:${port} (console http://${host}:${consolePort})`);
      await spawnService({
        name: 'minio',
        command: bin,
        args: ['server', dataDir, '--address', `${host}:${port}`, '--console-address', `${host}:${consolePort}`],
        env: {
          ...process.env,
          MINIO_ROOT_USER: ctx.secrets.minioRootUser,
          MINIO_ROOT_PASSWORD: ctx.secrets.minioRootPassword,
          // No update checks against the internet.
          MINIO_UPDATE: 'off',
        },
      });
    }
    await waitHealthy({
      service: 'minio',
      processes: ['minio'],
      timeoutMs: 60_000,
      check: async () => {
        await checkHealth(ctx);
        await ensureBuckets(ctx);
      },
    });
  },

  async stop() {
    await stopProcess('minio', 'SIGTERM', 30_000);
  },

  async status(ctx) {
    const { port, consolePort } = ctx.ports.minio;
    return [await processStatus(ctx, { name: 'minio', port, ports: { console: consolePort } }, 'minio', () => checkHealth(ctx))];
  },
};

