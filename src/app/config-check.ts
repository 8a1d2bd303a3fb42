// Config rules that need the component registry (application layer): a user file or unit that
// collides with one nodeup writes itself (until now an internal duplicate-task error, or two tasks
// silently fighting over one file), and preflight.ignore names that no check has (a typo must not
// silently ignore nothing). `runNode` applies them to the real model before building the graph;
// `nodeup validate` applies them to a model per distro of the table, with made-up host facts.
import { AgentError } from '../engine/errors.ts';
import type { Component } from '../model/component.ts';
import type { BootConfig, NodeConfig } from '../model/config.ts';
import { Graph } from '../engine/graph.ts';
import type { HostFacts } from '../engine/host/facts.ts';
import { deriveNodeModel, type NodeModel } from '../model/node-model.ts';
import { nodeFilesComponent } from './node-files.ts';
import { capiSentinel, readySentinel, receiptPath } from './receipt.ts';
import type { TaskKey } from '../engine/task.ts';
import { nthAddress } from '../engine/net/cidr.ts';
import type { Problem } from '../model/validate.ts';
import { distros } from '../model/distros.ts';
import { UnitTask } from '../engine/tasks/unit.ts';

/** Every node path the components (without the user's own files) write, and the task that owns it. Pure. */
export function ownedPaths(model: NodeModel, comps: readonly Component[]): Map<string, TaskKey | 'nodeup'> {
  const graph = new Graph();
  for (const c of comps) {
    if (c.name === nodeFilesComponent.name || !c.enabled(model)) continue;
    graph.setOwner(c.name);
    c.build(model, graph);
  }
  const owned = new Map<string, TaskKey | 'nodeup'>([receiptPath, readySentinel, capiSentinel].map((p) => [p, 'nodeup']));
  for (const [key, task] of graph.finish().tasks) {
    const paths = [...(task.path !== undefined ? [task.path] : []), ...(task.ownedPaths ?? [])];
    if (task instanceof UnitTask) {
      paths.push(`${task.spec.unitDir}/${task.spec.name}`);
      for (const d of Object.keys(task.spec.dropins ?? {})) paths.push(`${task.spec.unitDir}/${task.spec.name}.d/${d}`);
    }
    for (const p of paths) owned.set(p, key);
  }
  return owned;
}

/** The preflight check names `--ignore-preflight` and `spec.preflight.ignore` accept. Pure. */
export function preflightNames(model: NodeModel, comps: readonly Component[]): string[] {
  return ['all', ...new Set(comps.flatMap((c) => (c.preflight?.(model) ?? []).map((p) => p.name)))];
}

/** Problems of the config on this model that only the components can tell. Pure. */
export function componentProblems(model: NodeModel, comps: readonly Component[]): Problem[] {
  const out: Problem[] = [];
  const owned = ownedPaths(model, comps);
  const userUnitPaths = new Map(model.spec.units.map((u) => [`${model.distro.unitDir}/${u.name}`, u.name]));
  model.spec.files.forEach((f, i) => {
    const at = `spec.files.${i}.path`;
    const owner = owned.get(f.path);
    if (owner !== undefined) {
      out.push({ path: at, message: `${f.path} is written by nodeup itself (${owner === 'nodeup' ? 'its run receipt' : owner}): set it through its config field instead, or use another path (a drop-in)` });
      return;
    }
    const under = [...owned.keys()].find((p) => p.startsWith(`${f.path}/`));
    if (under !== undefined) out.push({ path: at, message: `${f.path} is a directory nodeup writes into (${under}): a file cannot take its place` });
    const unit = userUnitPaths.get(f.path);
    if (unit !== undefined) out.push({ path: at, message: `${f.path} is the unit file of spec.units ${unit}: keep one of them` });
  });
  model.spec.units.forEach((u, i) => {
    const key: TaskKey = `unit:${u.name}`;
    if ([...owned.values()].includes(key)) out.push({ path: `spec.units.${i}.name`, message: `${u.name} is a unit nodeup writes itself: configure it through its section (or add a drop-in file under ${model.distro.unitDir}/${u.name}.d/)` });
  });
  const names = preflightNames(model, comps);
  model.spec.preflight.ignore.forEach((n, i) => {
    if (!names.includes(n)) out.push({ path: `spec.preflight.ignore.${i}`, message: `no preflight check is named ${JSON.stringify(n)}: known checks are ${names.join(', ')}` });
  });
  return out;
}

/** Refuses `--ignore-preflight` names no check has (a usage error). */
export function checkIgnoreFlags(model: NodeModel, comps: readonly Component[], flags: readonly string[]): void {
  const names = preflightNames(model, comps);
  const unknown = flags.filter((n) => !names.includes(n));
  if (unknown.length > 0) {
    throw new AgentError('USAGE', `--ignore-preflight: no check is named ${unknown.join(', ')}; known checks: ${names.join(', ')}`, { details: { unknown } });
  }
}

/**
 * Models of `config` on each distro of the table, from made-up host facts that satisfy
 * networking.nodeAddress (`nodeup validate` has no node). Secrets are placeholders so every file
 * the components would write is in the graph. Pure.
 */
export function validationModels(boot: BootConfig, config: NodeConfig): NodeModel[] {
  const na = config.spec.networking.nodeAddress;
  const ip = (na.cidr !== undefined ? nthAddress(na.cidr, 1) : undefined) ?? '192.0.2.10';
  const iface = na.interface ?? 'eth0';
  const facts: HostFacts = {
    osRelease: { id: 'debian', idLike: [], versionId: '12', prettyName: 'Debian GNU/Linux 12' },
    arch: 'amd64',
    hostname: boot.nodeName ?? 'validate',
    ipv4: [ip],
    interfaces: { [iface]: [ip] },
    defaultRouteInterface: iface,
    cgroupVersion: undefined,
    memoryBytes: 8 * 1024 ** 3,
    cpus: 4,
    kernel: 'validate',
    swapBytes: 0,
  };
  const base = deriveNodeModel({
    boot,
    config,
    facts,
    secrets: { bootstrapToken: 'abcdef.0123456789abcdef', clusterCaCert: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' },
    live: false,
  });
  return distros.map((distro) => ({ ...base, distro }));
}
