/**
 * The commands that start a runbook: each maps its flags to its workflow's own input schema. A new
 * runbook is one entry here (its flags, and how they become the workflow's input).
 */
import { z } from 'zod';
import { COMPONENTS } from '../../contracts/backupTypes';
import { inputSchema as drillInputSchema } from '../../workflows/drDrill';
import { inputSchema as healthInputSchema } from '../../workflows/healthCheck';
import { inputSchema as rollInputSchema } from '../../workflows/kafkaRollingRestart';
import { inputSchema as backupInputSchema } from '../../workflows/platformBackup';
import { restoreInputSchema } from '../../workflows/restore';
import { demoResetInputSchema } from '../../workflows/demoReset';
import { compactionInputSchema } from '../../workflows/compaction';
import { listOf, pairsOf, validate, type OptionSpecs, type ParsedValues } from './args';
import { usageError } from './errors';

export type Control = 'pause' | 'resume' | 'abort';

export interface RunbookCommand {
  command: string;
  workflowType: string;
  summary: string;
  /** The flags after the command name, for help. */
  usage: string;
  options: OptionSpecs;
  /** The workflow input from the flags; a usage error names the flag at fault. */
  input(values: ParsedValues): unknown;
  /** Signals its runs answer to (`ballast pause|resume|abort RUN`). */
  controls?: Control[];
}

/** Validates a built input against the workflow's own schema; `flags` names each input field's flag. */
function checked(schema: z.ZodType, input: unknown, flags: Record<string, string>): unknown {
  validate(schema, input, (path) => flags[String(path[0])] ?? `input.${String(path[0])}`);
  return input;
}

const componentList = z.array(z.enum(COMPONENTS)).min(1).optional();
const flagName = (path: PropertyKey[]) => `--${String(path[0])}`;

/** `--target postgres:shop=shop_copy`, `clickhouse:analytics=analytics_copy`, `bucket:platform-data=copy`, `kafka:_copy`. */
export function restoreTargets(values: unknown): Record<string, unknown> | undefined {
  const items = values === undefined ? undefined : (Array.isArray(values) ? values : [values]).map(String);
  if (!items) return undefined;
  const targets: { postgres: Record<string, string>; clickhouse: Record<string, string>; buckets: Record<string, string>; kafkaSuffix?: string } = { postgres: {}, clickhouse: {}, buckets: {} };
  for (const item of items) {
    const colon = item.indexOf(':');
    const system = colon > 0 ? item.slice(0, colon) : '';
    const rest = item.slice(colon + 1);
    if (system === 'kafka') {
      targets.kafkaSuffix = rest;
      continue;
    }
    const map = system === 'postgres' ? targets.postgres : system === 'clickhouse' ? targets.clickhouse : system === 'bucket' ? targets.buckets : undefined;
    const eq = rest.indexOf('=');
    if (!map || eq <= 0 || eq === rest.length - 1) {
      throw usageError(`--target ${JSON.stringify(item)}: expected postgres:SOURCE=TARGET, clickhouse:SOURCE=TARGET, bucket:SOURCE=TARGET or kafka:SUFFIX`);
    }
    const source = rest.slice(0, eq);
    if (map[source] !== undefined) throw usageError(`--target ${JSON.stringify(item)}: ${system} ${source} is given a target twice`);
    map[source] = rest.slice(eq + 1);
  }
  return targets;
}

export const RUNBOOK_COMMANDS: RunbookCommand[] = [
  {
    command: 'health',
    workflowType: 'healthCheck',
    summary: 'check every configured system',
    usage: '[--systems postgres,clickhouse,kafka,objectStore]',
    options: { systems: { type: 'string', multiple: true } },
    input: (v) => checked(healthInputSchema, { systems: listOf(v.systems) }, { systems: '--systems' }),
  },
  {
    command: 'backup',
    workflowType: 'platformBackup',
    summary: 'back up the platform',
    usage: '[--components postgres,kafka,...] [--skip COMPONENT=REASON ...] [--no-retention]',
    options: { components: { type: 'string', multiple: true }, skip: { type: 'string', multiple: true }, 'no-retention': { type: 'boolean' } },
    input: (v) => {
      const skip = pairsOf('skip', v.skip);
      const flags = validate(z.object({ components: componentList, skip: z.array(z.tuple([z.enum(COMPONENTS), z.string().min(1, 'give the reason for skipping')])).optional() }), { components: listOf(v.components), skip }, flagName);
      const input = { components: flags.components, skip: flags.skip && Object.fromEntries(flags.skip), ...(v['no-retention'] ? { retention: false } : {}) };
      return checked(backupInputSchema, input, { components: '--components', skip: '--skip', retention: '--no-retention' });
    },
  },
  {
    command: 'restore',
    workflowType: 'restore',
    summary: 'restore a backup (waits for a signed approval of its plan)',
    usage: '[--backup ID|latest] [--components ...] [--target postgres:shop=shop_copy ...] [--incident-at TIME] [--allow-unsigned-backup]',
    options: {
      backup: { type: 'string' },
      components: { type: 'string', multiple: true },
      target: { type: 'string', multiple: true },
      'incident-at': { type: 'string' },
      'allow-unsigned-backup': { type: 'boolean' },
    },
    input: (v) =>
      checked(
        restoreInputSchema,
        { backupId: v.backup, components: listOf(v.components), targets: restoreTargets(v.target), incidentStartedAt: v['incident-at'], allowUnsignedBackup: v['allow-unsigned-backup'] },
        { backupId: '--backup', components: '--components', targets: '--target', incidentStartedAt: '--incident-at', allowUnsignedBackup: '--allow-unsigned-backup' },
      ),
  },
  {
    command: 'drill',
    workflowType: 'drDrill',
    summary: 'restore the latest complete backup into scratch targets, verify, tear down',
    usage: '[--components ...]',
    options: { components: { type: 'string', multiple: true } },
    input: (v) => checked(drillInputSchema, { components: listOf(v.components) }, { components: '--components' }),
  },
  {
    command: 'roll',
    workflowType: 'kafkaRollingRestart',
    summary: 'restart the Kafka brokers one at a time',
    usage: '[--brokers 1,2] [--approve-each]',
    options: { brokers: { type: 'string', multiple: true }, 'approve-each': { type: 'boolean' } },
    input: (v) => {
      const { brokers } = validate(z.object({ brokers: z.array(z.string().regex(/^\d+$/, 'must be broker ids (numbers), e.g. 1,2')).min(1).optional() }), { brokers: listOf(v.brokers) }, flagName);
      return checked(rollInputSchema, { brokers: brokers?.map(Number), approvalPerBroker: v['approve-each'] }, { brokers: '--brokers', approvalPerBroker: '--approve-each' });
    },
    controls: ['pause', 'resume', 'abort'],
  },
  {
    command: 'compact',
    workflowType: 'compaction',
    summary: 'nightly maintenance inside the maintenance window: merges, vacuums, retention (destructive steps wait for approval)',
    usage: '[--dry-run] [--systems clickhouse,postgres,kafka,objectStore] [--stop-by TIME]',
    options: { 'dry-run': { type: 'boolean' }, systems: { type: 'string', multiple: true }, 'stop-by': { type: 'string' } },
    input: (v) =>
      checked(compactionInputSchema, { dryRun: v['dry-run'], systems: listOf(v.systems), stopBy: v['stop-by'] }, { dryRun: '--dry-run', systems: '--systems', stopBy: '--stop-by' }),
    controls: ['pause', 'resume', 'abort'],
  },
  {
    command: 'demo-reset',
    workflowType: 'demoReset',
    summary: 'return the demo platform to empty (refused outside a demo environment); waits for a typed confirmation unless --force',
    usage: '[--dry-run|--force] [--keep kafka,...]',
    options: { 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, keep: { type: 'string', multiple: true } },
    input: (v) => {
      if (v['dry-run'] && v.force) throw usageError('--dry-run and --force: a dry run changes nothing, so there is nothing to force');
      return checked(demoResetInputSchema, { dryRun: v['dry-run'], force: v.force, keep: listOf(v.keep) }, { dryRun: '--dry-run', force: '--force', keep: '--keep' });
    },
  },
];

export function runbookCommand(name: string): RunbookCommand | undefined {
  return RUNBOOK_COMMANDS.find((c) => c.command === name);
}

export function runbookOfType(workflowType: string): RunbookCommand | undefined {
  return RUNBOOK_COMMANDS.find((c) => c.workflowType === workflowType);
}
