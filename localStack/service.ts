import type { LoadedConfig } from '../workers/config';
import type { StackPorts } from './ports';
import type { StackSecrets } from './secrets';

/** Everything a service module needs, resolved once per command. */
export interface StackContext {
  loaded: LoadedConfig;
  ports: StackPorts;
  secrets: StackSecrets;
  /** Progress for a person watching; silent when the stack is driven from code. */
  log: (line: string) => void;
}

export type ServiceState = 'up' | 'unhealthy' | 'down';

/** One line of `status`: a service, or one Kafka broker. */
export interface StatusLine {
  name: string;
  state: ServiceState;
  /** The main port; `ports` lists the others (web UI, native protocol, controller...). */
  port: number;
  ports: Record<string, number>;
  pid?: number;
  /** Why it is not up, or what else a person should know (e.g. the KRaft quorum leader). */
  detail?: string;
}

export interface StackService {
  name: ServiceName;
  /** Installs what is missing (idempotent). */
  install(ctx: StackContext): Promise<void>;
  /** Starts what is not running, then returns once it answers a real health check. */
  start(ctx: StackContext): Promise<void>;
  stop(ctx: StackContext): Promise<void>;
  status(ctx: StackContext): Promise<StatusLine[]>;
}

export const serviceNames = ['temporal', 'postgres', 'clickhouse', 'clickhouse-current', 'kafka', 'minio'] as const;
export type ServiceName = (typeof serviceNames)[number];
