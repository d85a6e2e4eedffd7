import { loadConfig, type LoadedConfig } from '../workers/config';
import { clickhouse } from './clickhouse';
import { clickhouseCurrent } from './clickhouseCurrent';
import { StackError } from './errors';
import { kafka, startBrokerProcess, stopBrokerProcess } from './kafka';
import { minio } from './minio';
import { stackPorts } from './ports';
import { postgres } from './postgres';
import { killStrays, strayStackProcesses } from './processes';
import { stackSecrets } from './secrets';
import { serviceNames, type ServiceName, type StackContext, type StackService, type StatusLine } from './service';
import { temporal } from './temporal';

export { StackError } from './errors';
export { runKafkaTool } from './kafkaTools';
export { serviceNames, type ServiceName, type ServiceState, type StatusLine } from './service';

export interface StackOptions {
  /** Defaults to loadConfig() (BALLAST_CONFIG, else ./ballast.yaml). */
  config?: LoadedConfig;
  /** Progress lines; silent by default. */
  log?: (line: string) => void;
}

const services: Record<ServiceName, StackService> = {
  temporal,
  postgres,
  clickhouse,
  'clickhouse-current': clickhouseCurrent,
  kafka,
  minio,
};

function context(options: StackOptions): StackContext {
  const loaded = options.config ?? loadConfig();
  return { loaded, ports: stackPorts(loaded.config), secrets: stackSecrets(loaded), log: options.log ?? (() => {}) };
}

function service(name: string): StackService {
  if (!(serviceNames as readonly string[]).includes(name)) {
    throw new StackError(`unknown service '${name}' (one of: ${serviceNames.join(', ')})`);
  }
  return services[name as ServiceName];
}

/** Runs one step per service concurrently and reports every failure, not just the first. */
async function forEachService(step: (s: StackService) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(serviceNames.map((name) => step(services[name])));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length) throw new StackError(failures.join('\n'));
}

/**
 * One at a time: installs may run apt-get, which takes a system-wide lock, and the builds would
 * only compete for the same CPUs.
 */
async function installEach(ctx: StackContext): Promise<void> {
  for (const name of serviceNames) await services[name].install(ctx);
}

export async function installStack(options: StackOptions = {}): Promise<void> {
  await installEach(context(options));
}

/** Installs what is missing, starts what is not running, and returns once every service passes its health check. */
export async function startStack(options: StackOptions = {}): Promise<void> {
  const ctx = context(options);
  await installEach(ctx);
  await forEachService(async (s) => {
    const started = Date.now();
    await s.start(ctx);
    ctx.log(`${s.name}: healthy after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
}

/**
 * Stops every service, then looks for any process of the stack that survived (a service whose
 * pid file was lost, say), kills it, and fails naming whatever still runs after that.
 */
export async function stopStack(options: StackOptions = {}): Promise<void> {
  const ctx = context(options);
  let failure: unknown;
  try {
    await forEachService((s) => s.stop(ctx));
  } catch (err) {
    failure = err;
  }
  const strays = strayStackProcesses();
  if (strays.length) {
    ctx.log(`stop: ${strays.length} stray stack process(es): ${strays.map((s) => s.pid).join(', ')}; killing them`);
  }
  const survivors = await killStrays(strays);
  if (survivors.length) {
    throw new StackError(
      `these stack processes are still running:\n${survivors.map((s) => `  pid ${s.pid}: ${s.cmdline}`).join('\n')}`,
    );
  }
  if (failure) throw failure;
}

export async function stackStatus(options: StackOptions = {}): Promise<StatusLine[]> {
  const ctx = context(options);
  const lines = await Promise.all(serviceNames.map((name) => services[name].status(ctx)));
  return lines.flat();
}

export async function startService(name: string, options: StackOptions = {}): Promise<void> {
  await service(name).start(context(options));
}

export async function stopService(name: string, options: StackOptions = {}): Promise<void> {
  await service(name).stop(context(options));
}

/** Controlled shutdown of one Kafka broker (SIGTERM, SIGKILL only after a timeout). */
export async function stopBroker(id: number, options: StackOptions = {}): Promise<void> {
  await stopBrokerProcess(context(options), id);
}

/** Starts one Kafka broker and returns once it is back in the cluster metadata. */
export async function startBroker(id: number, options: StackOptions = {}): Promise<void> {
  await startBrokerProcess(context(options), id);
}

export async function restartBroker(id: number, options: StackOptions = {}): Promise<void> {
  const ctx = context(options);
  await stopBrokerProcess(ctx, id);
  await startBrokerProcess(ctx, id);
}
