/**
 * The ballast command line: `ballast <command> [flags]`. Same config file (BALLAST_CONFIG or
 * --config) and Temporal connection as the worker. Exit codes: 0 ok, 1 failed, 2 usage or
 * invalid input, 3 refused by a guard, 4 waiting for an approval or timed out.
 */
import { ServiceError } from '@temporalio/client';
import { ANSWER_OPTIONS, answer, CONTROL_OPTIONS, control } from './answer';
import { GLOBAL_OPTIONS, parseCommandLine, type OptionSpecs } from './args';
import { createContext, type Context } from './context';
import { CliError, Exit, usageError, type ExitCode } from './errors';
import { Output, outputMode } from './output';
import { listBackups, platformStatus, runStatus, showBackup } from './platform';
import { RUNBOOK_COMMANDS, runbookCommand } from './runbooks';
import { START_OPTIONS, startRunbook } from './start';

interface OtherCommand {
  usage: string;
  summary: string;
  options: OptionSpecs;
  run(ctx: Context, positionals: string[], values: Record<string, unknown>): Promise<ExitCode>;
}

const OTHER_COMMANDS: Record<string, OtherCommand> = {
  approve: { usage: 'RUN [--reason TEXT] [--key PATH] [--yes] [--environment NAME]', summary: "sign and send an approval of the plan RUN waits on (a demo reset's typed confirmation also takes --environment)", options: ANSWER_OPTIONS, run: (ctx, p, v) => answer(ctx, 'approve', p[0], v as never) },
  reject: { usage: 'RUN [--reason TEXT] [--key PATH] [--yes]', summary: 'sign and send a rejection of the plan RUN waits on', options: ANSWER_OPTIONS, run: (ctx, p, v) => answer(ctx, 'reject', p[0], v as never) },
  pause: { usage: 'RUN [--reason TEXT]', summary: 'pause a run before its next step', options: CONTROL_OPTIONS, run: (ctx, p, v) => control(ctx, 'pause', p[0], v as never) },
  resume: { usage: 'RUN [--reason TEXT]', summary: 'resume a paused run', options: CONTROL_OPTIONS, run: (ctx, p, v) => control(ctx, 'resume', p[0], v as never) },
  abort: { usage: 'RUN [--reason TEXT]', summary: 'stop a run before its next step', options: CONTROL_OPTIONS, run: (ctx, p, v) => control(ctx, 'abort', p[0], v as never) },
  status: { usage: '[RUN]', summary: "one run's live status; without RUN, backups, drills, approvals and schedules", options: {}, run: (ctx, p) => (p[0] ? runStatus(ctx, p[0]) : platformStatus(ctx)) },
  backups: {
    usage: '[show ID|latest]',
    summary: 'the backups in the bucket; show: one manifest summarised',
    options: {},
    run: (ctx, p) => {
      if (p.length === 0) return listBackups(ctx);
      if (p[0] === 'show') return showBackup(ctx, p[1]);
      throw usageError(`backups: unknown subcommand ${JSON.stringify(p[0])} (expected: show ID)`);
    },
  },
};

export function helpText(): string {
  const rows = [
    ...RUNBOOK_COMMANDS.map((c) => `  ${c.command} ${c.usage} [--wait [--timeout 30m]] [--wait-approval] [--id ID]\n      ${c.summary}`),
    ...Object.entries(OTHER_COMMANDS).map(([name, c]) => `  ${name} ${c.usage}\n      ${c.summary}`),
  ];
  return [
    'usage: ballast <command> [flags] [-o text|json] [--config FILE]',
    '',
    'commands:',
    ...rows,
    '',
    'The config is BALLAST_CONFIG (or --config), as for the worker. -o json prints one JSON document on stdout; logs and progress go to stderr.',
    'Exit codes: 0 ok, 1 failed, 2 usage or invalid input, 3 refused by a guard, 4 waiting for approval or timed out.',
  ].join('\n');
}

export async function main(argv: string[], stopped: Promise<void>): Promise<ExitCode> {
  const [name, ...rest] = argv;
  // -o must be known before anything can fail, so that even a usage error is JSON when asked.
  const early = rest.findIndex((a) => a === '-o' || a === '--output');
  const inline = rest.find((a) => a.startsWith('--output=') || /^-o(text|json)$/.test(a));
  const requested = early >= 0 ? rest[early + 1] : inline?.replace(/^--output=|^-o/, '');
  const out = new Output(requested === 'json' ? 'json' : 'text');
  let ctx: Context | undefined;
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      out.result({ ok: true, exitCode: 0, commands: [...RUNBOOK_COMMANDS.map((c) => c.command), ...Object.keys(OTHER_COMMANDS)] }, helpText());
      return name ? Exit.ok : Exit.usage;
    }
    const runbook = runbookCommand(name);
    const other = OTHER_COMMANDS[name];
    if (!runbook && !other) throw usageError(`unknown command ${JSON.stringify(name)}; commands: ${[...RUNBOOK_COMMANDS.map((c) => c.command), ...Object.keys(OTHER_COMMANDS)].join(', ')}`);
    const { values, positionals } = parseCommandLine(rest, runbook ? { ...START_OPTIONS, ...runbook.options } : other!.options);
    outputMode(values.output);
    if (values.help) {
      out.result({ ok: true, exitCode: 0, command: name }, runbook ? `usage: ballast ${name} ${runbook.usage} [--wait] [--timeout DURATION] [--wait-approval] [--id ID]\n${runbook.summary}` : `usage: ballast ${name} ${other!.usage}\n${other!.summary}`);
      return Exit.ok;
    }
    if (runbook && positionals.length) throw usageError(`${name}: unexpected argument ${JSON.stringify(positionals[0])}`);
    if (runbook) runbook.input(values);
    ctx = createContext(typeof values.config === 'string' ? values.config : undefined, out);
    return runbook ? await startRunbook(ctx, runbook, values, stopped) : await other!.run(ctx, positionals, values);
  } catch (err) {
    const failure = err instanceof CliError ? err : new CliError(Exit.failed, describe(err));
    out.error(failure);
    return failure.exitCode;
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}

/** An unexpected error in one line: what failed, never a stack. */
function describe(err: unknown): string {
  if (err instanceof ServiceError) return `Temporal: ${(err.cause as Error | undefined)?.message ?? err.message}`;
  const e = err as { name?: string; message?: string };
  return `${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message ?? String(err)}`;
}

if (require.main === module) {
  // Ctrl-C stops following a run, never the run: it is Temporal's, not this process's.
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.on('SIGINT', () => stop());
  void main(process.argv.slice(2), stopped).then((code) => {
    process.exitCode = code;
    // The Temporal connection's handles must not keep a finished command alive.
    setTimeout(() => process.exit(code), 100).unref();
  });
}

export { GLOBAL_OPTIONS };
