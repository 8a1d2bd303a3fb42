// Layer: component. Imports src/engine and src/model only, never another component's folder.
// The `packages` component: the distro's base packages for a Kubernetes node (src/model/distros.ts),
// plus spec.packages.extra and spec.packages.pin, as `package:<name>` tasks sharing one batch.
// Owns: dpkg/rpm state, apt-mark holds, /etc/dnf/plugins/versionlock.list, and the files of
// spec.packages.repositories (nodeup-* in the apt and dnf source and key folders, repositories.ts).
// Runs first (registered first) and after nothing: other components may wait for `package:<name>`.
// On Flatcar (no package manager) it builds no tasks; asking for packages there fails preflight.
import type { AnyTask } from '../engine/task.ts';
import type { Component, PreflightCheck } from '../model/component.ts';
import type { NodeModel } from '../model/node-model.ts';
import { AptManager } from './apt.ts';
import { DnfManager } from './dnf.ts';
import { logicalPackages, type Distro } from '../model/distros.ts';
import { defaultManagerOptions, type ManagerOptions, type PackageManager, type PackageWant } from './manager.ts';
import { PackageSet, PackageTask } from './package-task.ts';
import { aptOnlyOptions, dnfOnlyOptions, repositoryProblems, repositoryTasks } from './repositories.ts';
import type { PackagesSpec } from './schema.ts';

/** The distro packages a node wants: base (from the table), extra, and pinned. Pure. */
export function wantedPackages(distro: Distro, spec: PackagesSpec): PackageWant[] {
  const names = new Set<string>();
  for (const lp of logicalPackages) {
    const name = distro.packages[lp];
    if (name) names.add(name);
  }
  for (const e of spec.extra) names.add(e);
  for (const p of Object.keys(spec.pin)) names.add(p);
  return [...names].sort().map((name) => (spec.pin[name] !== undefined ? { name, version: spec.pin[name] } : { name }));
}

export function managerOptions(distro: Distro, spec: PackagesSpec, overrides: Partial<ManagerOptions> = {}): ManagerOptions {
  return {
    ...defaultManagerOptions,
    lockTimeoutMs: spec.lockTimeoutSeconds * 1000,
    listsMaxAgeMs: spec.listsMaxAgeSeconds * 1000,
    attempts: spec.attempts,
    releaseVer: distro.version,
    versionlockPackage: distro.versionlockPackage,
    repositoryOptions: spec.onlyRepositories ? (distro.packageManager === 'apt' ? aptOnlyOptions : dnfOnlyOptions) : [],
    ...overrides,
  };
}

/** The `family` branch: which adapter a distro's packages go through. Undefined on Flatcar. */
export function packageManagerFor(distro: Distro, opts: ManagerOptions): PackageManager | undefined {
  switch (distro.packageManager) {
    case 'apt':
      return new AptManager(opts);
    case 'dnf':
      return new DnfManager(opts);
    case 'none':
      return undefined;
  }
}

/** Builds the package tasks for a model: its repositories' files, then the packages. Pure; exported for tests and benchmarks. */
export function buildPackageTasks(model: NodeModel, overrides: Partial<ManagerOptions> = {}): AnyTask[] {
  const spec = model.spec.packages;
  const manager = packageManagerFor(model.distro, managerOptions(model.distro, spec, overrides));
  if (!manager) return [];
  const repos = repositoryTasks(model.distro, spec);
  const set = new PackageSet(manager, wantedPackages(model.distro, spec));
  return [...repos.tasks, ...set.wants.map((w) => new PackageTask(set, w, repos.keys) as AnyTask)];
}

export const packagesComponent: Component = {
  name: 'packages',
  enabled: (m) => m.distro.packageManager !== 'none',
  notes: (m) => (m.distro.packageManager === 'none' ? [`${m.distro.name} has no package manager: packages are skipped`] : []),
  build(model, graph) {
    for (const t of buildPackageTasks(model)) graph.add(t);
  },
  preflight(): readonly PreflightCheck[] {
    return [
      {
        name: 'packages-manager',
        check: (m) => {
          const spec = m.spec.packages;
          const asked = [...spec.extra, ...Object.keys(spec.pin)];
          if (m.distro.packageManager !== 'none' || asked.length === 0) return undefined;
          return `${m.distro.name} has no package manager: spec.packages (${asked.sort().join(', ')}) cannot be installed; remove them (packages are skipped on this distro)`;
        },
      },
      {
        name: 'packages-repositories',
        check: (m) => {
          const problems = repositoryProblems(m.distro, m.spec.packages);
          return problems.length > 0 ? problems.join('; ') : undefined;
        },
      },
    ];
  },
};
