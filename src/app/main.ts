// src/app owns the CLI entry, commands, the component registry, run (boot config -> receipt), receipt,
// preflight runner, example, nodeup.service and `nodeup etcd`.
// Layer: application. May import every layer below (components, model, engine) and other app folders.
// The entry point: parses the command line, runs one command, maps errors to exit codes.
// The only place that calls process.exit.
// Commands are loaded lazily from the table (command-table.ts): only the one that runs is evaluated.
import { commandHelp, loggerFor, mainHelp, noLogger, parseCommandLine } from './cli.ts';
import { commandTable } from './command-table.ts';
import { AgentError, errorMessage, exitCodeFor } from '../engine/errors.ts';

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp(commandTable));
    return name ? 0 : 2;
  }
  if (name === '--version') return main(['version']);
  const entry = commandTable.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`nodeup: unknown command ${name}\n\n${mainHelp(commandTable)}`);
    return 2;
  }
  try {
    const cmd = await entry.load();
    const { values, positionals } = parseCommandLine(cmd, rest);
    if (values.help) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    const log = cmd.logs === false ? noLogger : await loggerFor(values);
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
