import type { Config } from '../workers/config';
import { StackError } from './errors';

/**
 * Every port the local stack listens on. The config file sets the primary ones; the fixed
 * derivations below are the only other source, so nothing else in the stack picks a port.
 */
export interface StackPorts {
  temporal: { host: string; port: number; uiPort: number };
  postgres: { host: string; port: number };
  clickhouse: { host: string; httpPort: number; nativePort: number };
  /** Absent when the config has no stack.clickhouseCurrent: the stack then does not run it. */
  clickhouseCurrent?: { host: string; httpPort: number; nativePort: number };
  kafka: { id: number; host: string; port: number; controllerPort: number }[];
  minio: { host: string; port: number; consolePort: number };
}

const TEMPORAL_UI_OFFSET = 1000;
const KAFKA_CONTROLLER_OFFSET = 100;
const MINIO_CONSOLE_OFFSET = 1;
/** stack.clickhouseCurrent names ports only: the engine listens on loopback, as the committed config has every service do. */
const CLICKHOUSE_CURRENT_HOST = '127.0.0.1';

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

function urlHostPort(url: string, what: string): { host: string; port: number } {
  const parsed = new URL(url);
  if (!parsed.port) {
    throw new StackError(`${what} (${url}) must name its port explicitly for the local stack`);
  }
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
}

export function stackPorts(config: Config): StackPorts {
  const temporal = splitHostPort(config.temporal.address);
  if (!config.objectStore.endpoint) {
    throw new StackError('objectStore.endpoint must be set for the local stack (the MinIO address)');
  }
  const minio = urlHostPort(config.objectStore.endpoint, 'objectStore.endpoint');
  const clickhouseHttp = urlHostPort(config.clickhouse.url, 'clickhouse.url');
  const clickhouseCurrent = config.stack?.clickhouseCurrent;
  const ports: StackPorts = {
    temporal: { ...temporal, uiPort: temporal.port + TEMPORAL_UI_OFFSET },
    postgres: { host: config.postgres.host, port: config.postgres.port },
    clickhouse: { host: clickhouseHttp.host, httpPort: clickhouseHttp.port, nativePort: config.clickhouse.nativePort },
    clickhouseCurrent: clickhouseCurrent && { host: CLICKHOUSE_CURRENT_HOST, ...clickhouseCurrent },
    kafka: config.kafka.brokers.map((b) => ({
      id: b.id,
      host: b.host,
      port: b.port,
      controllerPort: b.port + KAFKA_CONTROLLER_OFFSET,
    })),
    minio: { ...minio, consolePort: minio.port + MINIO_CONSOLE_OFFSET },
  };
  assertDistinct(ports);
  return ports;
}

/** A derived port landing on a configured one would only show up later as a confusing bind error. */
function assertDistinct(ports: StackPorts): void {
  const owners = new Map<number, string>();
  const claim = (port: number, owner: string) => {
    const previous = owners.get(port);
    if (previous) throw new StackError(`port ${port} is used by both ${previous} and ${owner}: change ballast.yaml`);
    owners.set(port, owner);
  };
  claim(ports.temporal.port, 'temporal');
  claim(ports.temporal.uiPort, 'temporal web UI');
  claim(ports.postgres.port, 'postgres');
  claim(ports.clickhouse.httpPort, 'clickhouse http');
  claim(ports.clickhouse.nativePort, 'clickhouse native');
  if (ports.clickhouseCurrent) {
    claim(ports.clickhouseCurrent.httpPort, 'clickhouse-current http');
    claim(ports.clickhouseCurrent.nativePort, 'clickhouse-current native');
  }
  for (const b of ports.kafka) {
    claim(b.port, `kafka broker ${b.id}`);
    claim(b.controllerPort, `kafka controller ${b.id}`);
  }
  claim(ports.minio.port, 'minio');
  claim(ports.minio.consolePort, 'minio console');
}
