// src/app owns the CLI entry, commands, the component registry, run (boot config -> receipt), receipt,
// preflight runner, example, nodeup.service and `nodeup etcd`.
// Layer: application. May import every layer below (components, model, engine) and other app folders.
// The entry point: parses the command line, runs one command, maps errors to exit codes.
// The only place that calls process.exit.
import 'reflect-metadata';
import { commandHelp, loggerFor, mainHelp, parseCommandLine, type Command } from './cli.ts';
import { applyCommand, installUnitCommand, planCommand, schemaCommand, statusCommand, versionCommand } from './commands.ts';
import { AgentError, errorMessage, exitCodeFor } from '../engine/errors.ts';
import { launchCommand } from '../orchestrator/cli.ts';
import { userdataCommand } from '../bootstrap/userdata-command.ts';
import { sshCommand } from '../ssh/command.ts';
import { bakeCommand } from '../bootstrap/bake.ts';
import { etcdCommand } from './etcd-command.ts';
import { routesCommand } from './routes-command.ts';
import { exampleCommand, publishCommand } from './example-command.ts';
import { validateCommand } from './validate-command.ts';

/** In the order `nodeup --help` lists them: the node's own commands, then the operator's. */
export const commands: readonly Command[] = [
  applyCommand,
  planCommand,
  statusCommand,
  installUnitCommand,
  bakeCommand,
  userdataCommand,
  launchCommand,
  sshCommand,
  etcdCommand,
  routesCommand,
  publishCommand,
  validateCommand,
  exampleCommand,
  schemaCommand,
  versionCommand,
];

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp(commands));
    return name ? 0 : 2;
  }
  if (name === '--version') return main(['version']);
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`nodeup: unknown command ${name}\n\n${mainHelp(commands)}`);
    return 2;
  }
  try {
    const { values, positionals } = parseCommandLine(cmd, rest);
    if (values.help) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    const log = loggerFor(values);
    return await cmd.run({ values, positionals, log, out: (t) => process.stdout.write(t) });
  } catch (err: unknown) {
    process.stderr.write(`nodeup ${name}: ${errorMessage(err)}\n`);
    if (err instanceof AgentError && Object.keys(err.details).length > 0 && process.env.NODEUP_LOG_LEVEL === 'debug') {
      process.stderr.write(JSON.stringify(err.details, null, 2) + '\n');
    }
    return exitCodeFor(err);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`nodeup: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
