// Commands and their options. Each folder that adds a command exports a Command; command-table.ts
// lists them (name, summary, lazy load).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
  readonly log: Logger;
  /** Writes to stdout (reports, plans, tables). */
  readonly out: (text: string) => void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: Options;
  /** false: the command never logs, so no logger is made (pino stays unloaded: `version`'s start-up). */
  readonly logs?: false;
  /** Returns the exit code. */
  run(ctx: CommandContext): Promise<number>;
}

export const globalOptions: Options = {
  config: { type: 'string', short: 'c', default: '/etc/nodeup/boot.yaml' },
  root: { type: 'string', default: '/' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  only: { type: 'string', multiple: true },
  skip: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
};

function optionHelp(opts: Options): string {
  return Object.entries(opts)
    .map(([name, o]) => `  --${name}${o.type === 'string' ? ' <value>' : ''}${o.default !== undefined ? ` (default ${JSON.stringify(o.default)})` : ''}`)
    .join('\n');
}

export function commandHelp(cmd: Command): string {
  return `nodeup ${cmd.name}: ${cmd.summary}\n\nUsage: ${cmd.usage}\n\nOptions:\n${optionHelp({ ...globalOptions, ...cmd.options })}\n`;
}

export function mainHelp(commands: readonly Pick<Command, 'name' | 'summary'>[]): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return [
    'nodeup: converge a machine into a Kubernetes node, from one config in a state store.',
    '',
    'Usage: nodeup <command> [options]   (nodeup <command> --help for its options)',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'Exit codes: 0 converged, 1 a task failed, 2 bad config or unsupported host.',
    '',
  ].join('\n');
}

export function parseCommandLine(cmd: Command, argv: readonly string[]): { values: CommandContext['values']; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...argv], options: { ...globalOptions, ...cmd.options }, allowPositionals: true, strict: true });
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (err: unknown) {
    throw new AgentError('USAGE', `${err instanceof Error ? err.message : String(err)} (see nodeup ${cmd.name} --help)`);
  }
}

/** The logger a command gets from --log-format and --log-level (pino, loaded here: issue 17). */
export async function loggerFor(values: CommandContext['values']): Promise<Logger> {
  const format = values['log-format'];
  if (format !== undefined && format !== 'json' && format !== 'pretty') {
    throw new AgentError('USAGE', `--log-format must be json or pretty, got ${String(format)}`);
  }
  const { createLogger } = await import('../engine/log.ts');
  return createLogger({
    ...(format ? { format: format } : {}),
    ...(typeof values['log-level'] === 'string' ? { level: values['log-level'] } : {}),
  });
}

/** What a command that declares `logs: false` gets as its logger: using it is a bug, said loudly. */
export const noLogger: Logger = new Proxy({} as Logger, {
  get: (_target, prop) => {
    throw new Error(`internal: a command declared logs: false and used its logger (.${String(prop)})`);
  },
});

export function stringList(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap((x) => String(x).split(',')).filter(Boolean);
  if (typeof v === 'string') return v.split(',').filter(Boolean);
  return [];
}
