// `nodeup validate FILE...`: every rule a node would apply to its config, without a node (for a CI
// pipeline): a NodeConfig file; a BootConfig and the NodeConfig it pins (read from its state store,
// or given as a second file); exit 0 when all is well, 2 with every problem listed. Writes nothing.
import * as yaml from 'js-yaml';
import type { Command } from './cli.ts';
import { componentProblems, validationModels } from './config-check.ts';
import { bootConfigFor, checkNodeConfig, configHash, configInvalid, parseBootConfig, type BootConfig, type NodeConfig } from '../model/config.ts';
import { components } from './components.ts';
import { AgentError, errorMessage, exitCodeFor } from '../engine/errors.ts';
import { readLocalFile } from '../engine/host/local.ts';
import type { Logger } from '../engine/log.ts';
import { formatProblem, pairProblems } from '../model/validate.ts';
import { openStateStore } from '../statestore/open.ts';
import { storeLayout } from '../engine/state-store.ts';
import '../statestore/backends.ts';

function kindOf(text: string): string | undefined {
  try {
    const doc = yaml.load(text) as { kind?: unknown } | null;
    return typeof doc?.kind === 'string' ? doc.kind : undefined;
  } catch {
    return undefined; // the parser of the document reports the syntax error with the file name
  }
}

interface Checked {
  readonly file: string;
  readonly config: NodeConfig;
  readonly raw: string;
  /** The document's own problems (its shapes are right). */
  readonly problems: readonly string[];
}

/** The rules that need the components, on every distro of the table; problems once each. */
function componentRuleProblems(boot: BootConfig, c: Checked): string[] {
  const problems = new Set<string>();
  try {
    for (const model of validationModels(boot, c.config)) for (const p of componentProblems(model, components)) problems.add(formatProblem(p));
  } catch (err: unknown) {
    if (exitCodeFor(err) !== 2) throw err;
    problems.add(errorMessage(err));
  }
  return [...problems];
}

function checked(file: string, raw: string, expectedHash?: string): Checked {
  const res = checkNodeConfig(raw, file, expectedHash);
  if (res.config === undefined) throw configInvalid(file, res.problems);
  return { file, raw, config: res.config, problems: res.problems };
}

const bootFor = (config: NodeConfig, raw: string): BootConfig => bootConfigFor(config, raw, 'file:///validate');

export interface ValidateResult {
  /** One line per config that passed. */
  readonly ok: readonly string[];
  /** One message per file that did not (each lists every problem of that file). */
  readonly failures: readonly string[];
}

/** Checks the files as `nodeup validate` does; throws only for usage errors and internal errors. */
export async function validateFiles(files: readonly string[], log: Logger): Promise<ValidateResult> {
  if (files.length === 0) throw new AgentError('USAGE', 'nodeup validate needs at least one file (a NodeConfig or a BootConfig)');
  const ok: string[] = [];
  const failures: string[] = [];
  const fail = (err: unknown): void => {
    if (exitCodeFor(err) !== 2 && !(err instanceof AgentError && err.code === 'STATE_STORE')) throw err;
    failures.push(errorMessage(err));
  };
  const nodes: Checked[] = [];
  const boots: { file: string; boot: BootConfig }[] = [];
  for (const file of files) {
    try {
      const raw = await readLocalFile(file, 'config');
      if (kindOf(raw) === 'BootConfig') boots.push({ file, boot: parseBootConfig(raw, file) });
      else nodes.push(checked(file, raw));
    } catch (err: unknown) {
      fail(err);
    }
  }
  if (failures.length > 0) return { ok, failures };
  if (boots.length > 1 || (boots.length === 1 && nodes.length > 1)) {
    throw new AgentError('USAGE', 'nodeup validate takes NodeConfig files, or one BootConfig with at most one NodeConfig');
  }
  const boot = boots[0];
  if (boot !== undefined && nodes.length === 0) {
    const key = storeLayout.nodeConfig(boot.boot.instanceGroup);
    const source = `${boot.boot.stateStore}/${key}`;
    try {
      const raw = await openStateStore(boot.boot.stateStore, { s3: boot.boot.s3, log }).read(key);
      if (raw === undefined) throw new AgentError('STATE_STORE', `${source}: not found: publish the instance group's NodeConfig first (nodeup publish)`);
      nodes.push(checked(source, raw.toString('utf8'), boot.boot.nodeConfigHash));
    } catch (err: unknown) {
      fail(err);
      return { ok, failures };
    }
  }
  for (const n of nodes) {
    try {
      const problems = [...n.problems];
      const pair = boot === undefined ? [] : pairProblems(boot.boot, n.config).map(formatProblem);
      if (boot !== undefined && configHash(n.raw) !== boot.boot.nodeConfigHash) {
        pair.push(`nodeConfigHash: the boot config ${boot.file} pins ${boot.boot.nodeConfigHash}, ${n.file} hashes to ${configHash(n.raw)}: publish it again (nodeup publish) and use the boot config it prints`);
      }
      problems.push(...pair);
      if (pair.length === 0) problems.push(...componentRuleProblems(boot?.boot ?? bootFor(n.config, n.raw), n));
      if (problems.length > 0) throw configInvalid(n.file, problems);
      ok.push(`ok: ${n.file} (${n.config.metadata.cluster}/${n.config.metadata.instanceGroup}, ${n.config.spec.role})${boot ? ` pinned by ${boot.file}` : ''}`);
    } catch (err: unknown) {
      fail(err);
    }
  }
  return { ok, failures };
}

export const validateCommand: Command = {
  name: 'validate',
  summary: 'check a NodeConfig, or a boot config and the NodeConfig it pins, without a node (exit 0 or 2)',
  usage: 'nodeup validate FILE... (a NodeConfig; a BootConfig, with its NodeConfig as a second file or read from its state store)',
  options: {},
  async run(ctx) {
    const res = await validateFiles(ctx.positionals, ctx.log);
    for (const line of res.ok) ctx.out(`${line}\n`);
    for (const f of res.failures) process.stderr.write(`nodeup validate: ${f}\n`);
    return res.failures.length > 0 ? 2 : 0;
  },
};
