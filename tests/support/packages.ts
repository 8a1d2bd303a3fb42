// Test helpers for src/packages: a NodeModel for a fixture root's os-release, a run of the package
// tasks through the real executor, and a logger whose lines a test can read.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { execute, type Mode, type RunReport } from '../../src/engine/executor.ts';
import { Graph } from '../../src/engine/graph.ts';
import { parseOsRelease } from '../../src/engine/host/facts.ts';
import type { Host } from '../../src/engine/host/host.ts';
import type { Logger } from '../../src/engine/log.ts';
import type { NodeModel } from '../../src/model/node-model.ts';
import { modelOf, nodeConfig } from './model.ts';
import { buildPackageTasks } from '../../src/packages/component.ts';
import type { ManagerOptions } from '../../src/packages/manager.ts';

export const fixtureRoots = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../tests/fixtures/roots');

export async function fixtureOsRelease(id: string): Promise<string> {
  return fsp.readFile(path.join(fixtureRoots, id, 'etc/os-release'), 'utf8');
}


/** A worker NodeModel on the distro of an os-release text, with a spec.packages section. */
export function packagesModel(osRelease: string, packages: Record<string, unknown> = {}): NodeModel {
  return modelOf(nodeConfig('worker', { apiServerEndpoint: 'https://10.0.0.1:6443', packages }, 'test'), { facts: { osRelease: parseOsRelease(osRelease) } });
}

/** Runs the packages component's tasks (and only them) through the real executor. */
export async function runPackages(model: NodeModel, host: Host, mode: Mode, log: Logger, overrides: Partial<ManagerOptions> = {}): Promise<RunReport> {
  const graph = new Graph();
  graph.setOwner('packages');
  for (const t of buildPackageTasks(model, overrides)) graph.add(t);
  return execute(graph.finish(), host, { mode, log, owner: graph.owner });
}

export interface CapturedLog {
  readonly log: Logger;
  readonly lines: () => Record<string, unknown>[];
}

export function captureLog(level = 'debug'): CapturedLog {
  const out: string[] = [];
  const log = pino({ level }, { write: (s: string) => void out.push(s) });
  return { log, lines: () => out.flatMap((s) => s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)) };
}
