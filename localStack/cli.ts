import { ConfigError } from '../workers/config';
import {
  installStack,
  restartBroker,
  serviceNames,
  stackStatus,
  startBroker,
  startService,
  startStack,
  stopBroker,
  stopService,
  stopStack,
  StackError,
  type StatusLine,
} from './index';

const USAGE = `usage: scripts/stack <command>

  install                    install every tool that is missing (per-user cache, Debian packages)
  start [service]            install what is missing, start what is not running, wait until healthy
  stop [service]             stop everything (or one service) and check that nothing is left running
  status [--json]            one line per service and per Kafka broker; exit 0 only when all are up
  broker stop|start|restart <id>
                             control one Kafka broker by node id

services: ${serviceNames.join(', ')}`;

const started = Date.now();

function log(line: string): void {
  const elapsed = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${elapsed}s] ${line}`);
}

function formatStatus(lines: StatusLine[]): string {
  return lines
    .map((l) => {
      const extra = Object.entries(l.ports)
        .map(([what, port]) => `${what} ${port}`)
        .join(', ');
      const port = `${l.port}${extra ? ` (${extra})` : ''}`;
      const pid = l.pid === undefined ? '' : `pid ${l.pid}`;
      return [l.name.padEnd(18), l.state.padEnd(10), port.padEnd(26), pid.padEnd(11), l.detail ?? ''].join(' ').trimEnd();
    })
    .join('\n');
}

function brokerId(text: string | undefined): number {
  const id = Number(text);
  if (text === undefined || !Number.isInteger(id)) throw new StackError(`broker id must be a number\n\n${USAGE}`);
  return id;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const options = { log };
  switch (command) {
    case 'install':
      await installStack(options);
      log('installed');
      return 0;
    case 'start':
      if (rest[0]) await startService(rest[0], options);
      else await startStack(options);
      log(`${rest[0] ?? 'stack'} is up`);
      return 0;
    case 'stop':
      if (rest[0]) await stopService(rest[0], options);
      else await stopStack(options);
      log(`${rest[0] ?? 'stack'} stopped`);
      return 0;
    case 'status': {
      const lines = await stackStatus();
      console.log(rest.includes('--json') ? JSON.stringify(lines, null, 2) : formatStatus(lines));
      return lines.every((l) => l.state === 'up') ? 0 : 1;
    }
    case 'broker': {
      const [action, id] = rest;
      const actions = { stop: stopBroker, start: startBroker, restart: restartBroker } as const;
      if (action !== 'stop' && action !== 'start' && action !== 'restart') throw new StackError(USAGE);
      await actions[action](brokerId(id), options);
      log(`broker ${id}: ${action} done`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 1 : 0;
    default:
      throw new StackError(`unknown command '${command}'\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof StackError || err instanceof ConfigError) {
      console.error(`scripts/stack: ${err.message}`);
    } else {
      console.error(err);
    }
    process.exit(1);
  },
);
