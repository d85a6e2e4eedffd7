/** What every command shares: the worker's config file, the Temporal client, the output. */
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ConfigError, configPath, loadConfig, type LoadedConfig } from '../../workers/config';
import { temporalConnectionOptions } from '../../workers/temporal';
import { CliError, Exit, usageError } from './errors';
import type { Output } from './output';

export interface Context {
  loaded: LoadedConfig;
  out: Output;
  client(identity?: string): Promise<Client>;
  /** A running or finished run by workflow id (its latest run); unknown: exit 2. */
  run(workflowId: string): Promise<{ handle: WorkflowHandle; type: string; runId: string; status: string; startTime: Date; closeTime?: Date }>;
  webUiLink(workflowId: string, runId: string): string | undefined;
  close(): Promise<void>;
}

export function createContext(configFile: string | undefined, out: Output): Context {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(configFile ?? configPath());
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(Exit.usage, err.message);
    throw err;
  }
  let connection: Connection | undefined;
  const clients = new Map<string, Client>();
  const { temporal } = loaded.config;
  const context: Context = {
    loaded,
    out,
    async client(identity) {
      const key = identity ?? '';
      const existing = clients.get(key);
      if (existing) return existing;
      if (!connection) {
        try {
          connection = await Connection.connect({ ...temporalConnectionOptions(loaded.config, loaded.path), connectTimeout: '10 seconds' });
        } catch (err) {
          throw new CliError(Exit.failed, `cannot reach Temporal at ${temporal.address} (temporal.address in ${loaded.path}): ${(err as Error).message}`);
        }
      }
      const client = new Client({ connection, namespace: temporal.namespace, ...(identity ? { identity } : {}) });
      clients.set(key, client);
      return client;
    },
    async run(workflowId) {
      if (!workflowId) throw usageError('name the run: its workflow id (ballast prints it when it starts one)');
      const handle = (await context.client()).workflow.getHandle(workflowId);
      try {
        const d = await handle.describe();
        return { handle: (await context.client()).workflow.getHandle(workflowId, d.runId), type: d.type, runId: d.runId, status: d.status.name, startTime: d.startTime, closeTime: d.closeTime };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw usageError(`no run ${JSON.stringify(workflowId)} in namespace ${temporal.namespace}`);
        throw err;
      }
    },
    webUiLink(workflowId, runId) {
      if (!temporal.webUiUrl) return undefined;
      return `${temporal.webUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
    },
    async close() {
      await connection?.close();
    },
  };
  return context;
}
