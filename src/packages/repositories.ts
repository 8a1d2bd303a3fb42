// spec.packages.repositories: package repositories nodeup writes before it installs anything, for
// nodes whose distro mirrors are out of reach (air-gapped sites, a local aptly/reposync copy).
// apt gets a deb822 file in /etc/apt/sources.list.d/ (the signing key beside it in
// /etc/apt/keyrings/), dnf a .repo file in /etc/yum.repos.d/ (the key in /etc/pki/rpm-gpg/).
// With spec.packages.onlyRepositories nodeup's own apt and dnf commands read these repositories
// and no other: the image's default sources stay as they are, unreachable or not, and no run waits
// on them (apt through a folder of links to the files, /etc/apt/nodeup-sources.d/; dnf with
// --disablerepo='*' --enablerepo='nodeup-*'). A repository taken out of the spec has its files
// removed: the nodeup-* files whose first line says nodeup wrote them, their keys and links; a
// repository that drops its key (trusted now) has the key removed.
import { AgentError } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import { FileTask, SymlinkTask } from '../engine/tasks/file.ts';
import type { Change, Task, TaskKey } from '../engine/task.ts';
import type { Distro } from '../model/distros.ts';
import type { PackagesSpec, RepositorySpec } from './schema.ts';

/** The folder of links apt reads instead of sources.list and sources.list.d with onlyRepositories. */
export const aptOnlySourcesDir = '/etc/apt/nodeup-sources.d';
/** apt-get options that make it read only nodeup's repositories (paths inside the node's root). */
export const aptOnlyOptions: readonly string[] = ['-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${aptOnlySourcesDir}`];
/** dnf options that make it read only nodeup's repositories. */
export const dnfOnlyOptions: readonly string[] = ['--disablerepo=*', '--enablerepo=nodeup-*'];

const marker = '# Written by nodeup from spec.packages.repositories';
const header = (r: RepositorySpec): string => `${marker} (${r.name}); nodeup replaces it on every run.\n`;
const isFlat = (r: RepositorySpec): boolean => r.suites.length === 1 && (r.suites[0] ?? '').endsWith('/');

/** The folders a family's repository files go to, and a source file's extension. */
const folders = {
  apt: { sources: '/etc/apt/sources.list.d', ext: '.sources', keys: '/etc/apt/keyrings' },
  dnf: { sources: '/etc/yum.repos.d', ext: '.repo', keys: '/etc/pki/rpm-gpg' },
} as const;

/** Where one repository's files go on this distro family. */
export function repositoryPaths(pm: 'apt' | 'dnf', name: string): { source: string; key: string; only?: string } {
  const f = folders[pm];
  return {
    source: `${f.sources}/nodeup-${name}${f.ext}`,
    key: `${f.keys}/nodeup-${name}.asc`,
    ...(pm === 'apt' ? { only: `${aptOnlySourcesDir}/nodeup-${name}${f.ext}` } : {}),
  };
}

/** The deb822 source of one repository. Pure. */
export function renderAptSource(r: RepositorySpec): string {
  const lines = [header(r).trimEnd(), 'Types: deb', `URIs: ${r.url}`, `Suites: ${r.suites.join(' ')}`];
  if (r.components.length > 0) lines.push(`Components: ${r.components.join(' ')}`);
  lines.push(r.key !== undefined ? `Signed-By: ${repositoryPaths('apt', r.name).key}` : 'Trusted: yes');
  return lines.join('\n') + '\n';
}

/** The dnf .repo file of one repository. Pure. */
export function renderDnfRepo(r: RepositorySpec): string {
  const lines = [header(r).trimEnd(), `[nodeup-${r.name}]`, `name=nodeup ${r.name} (spec.packages.repositories)`, `baseurl=${r.url}`, 'enabled=1'];
  if (r.key !== undefined) lines.push('gpgcheck=1', `gpgkey=file://${repositoryPaths('dnf', r.name).key}`);
  else lines.push('gpgcheck=0');
  return lines.join('\n') + '\n';
}

/** What a distro family makes of the repositories: the problems, each naming its field. Pure. */
export function repositoryProblems(distro: Distro, spec: PackagesSpec): string[] {
  const out: string[] = [];
  const repos = spec.repositories;
  if (repos.length === 0) return out;
  if (distro.packageManager === 'none') return [`spec.packages.repositories: ${distro.name} has no package manager; remove them`];
  repos.forEach((r, i) => {
    const at = `spec.packages.repositories[${i}] (${r.name})`;
    if (distro.packageManager === 'dnf') {
      if (r.suites.length > 0 || r.components.length > 0) out.push(`${at}: suites and components are apt's; ${distro.name} uses dnf, which reads the url as the repository's baseurl: remove them`);
      return;
    }
    if (r.suites.length === 0) out.push(`${at}.suites: an apt repository needs its suites, for example [bookworm] (or ["./"] for a flat repository)`);
    else if (isFlat(r) && r.components.length > 0) out.push(`${at}.components: a flat repository (suite ${r.suites[0] ?? ''}) has no components: remove them`);
    else if (!isFlat(r) && r.components.length === 0) out.push(`${at}.components: an apt repository with suites needs its components, for example [main]`);
    else if (r.suites.some((s) => s.endsWith('/'))) out.push(`${at}.suites: a flat repository ("./") is the one suite of its entry`);
  });
  return out;
}

/**
 * The tasks that put the repositories on the node, and the prune of repositories no longer in the
 * spec. Package tasks run after every key returned in `keys`.
 */
export function repositoryTasks(distro: Distro, spec: PackagesSpec): { tasks: Task<unknown>[]; keys: readonly TaskKey[] } {
  const pm = distro.packageManager;
  if (pm === 'none') return { tasks: [], keys: [] };
  const tasks: Task<unknown>[] = [];
  const wanted = new Set<string>();
  for (const r of spec.repositories) {
    const p = repositoryPaths(pm, r.name);
    if (r.key !== undefined) {
      tasks.push(new FileTask({ path: p.key, content: r.key.endsWith('\n') ? r.key : `${r.key}\n`, mode: 0o644 }));
      wanted.add(p.key);
    }
    const after: TaskKey[] = r.key !== undefined ? [`file:${p.key}`] : [];
    tasks.push(new FileTask({ path: p.source, content: pm === 'apt' ? renderAptSource(r) : renderDnfRepo(r), mode: 0o644, after }));
    wanted.add(p.source);
    if (spec.onlyRepositories && p.only !== undefined) {
      tasks.push(new SymlinkTask({ path: p.only, target: p.source, after: [`file:${p.source}`] }));
      wanted.add(p.only);
    }
  }
  tasks.push(new RepositoryPruneTask(pm, wanted, spec.repositories.map((r) => r.name), tasks.map((t) => t.key)));
  return { tasks, keys: tasks.map((t) => t.key) };
}

/** Removes nodeup's repository files that the spec no longer names (a repository taken out of it). */
export class RepositoryPruneTask implements Task<readonly string[]> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  private readonly pm: 'apt' | 'dnf';
  private readonly wanted: ReadonlySet<string>;
  /** The spec's repository names. */
  private readonly names: readonly string[];

  constructor(pm: 'apt' | 'dnf', wanted: ReadonlySet<string>, names: readonly string[], after: readonly TaskKey[]) {
    this.pm = pm;
    this.wanted = wanted;
    this.names = names;
    this.after = after;
    this.key = 'prune:package-repositories';
  }

  async observe(host: Host): Promise<readonly string[]> {
    const stale = new Set<string>();
    const named = new Set(this.names);
    const f = folders[this.pm];
    for (const n of await host.fs.list(f.sources)) {
      const name = n.startsWith('nodeup-') && n.endsWith(f.ext) ? n.slice('nodeup-'.length, -f.ext.length) : '';
      if (!/^[a-z0-9-]+$/.test(name)) continue;
      const source = `${f.sources}/${n}`;
      // Only what nodeup wrote (its first line says so): a file of the operator's is left alone.
      if (this.wanted.has(source) || !(await host.fs.read(source))?.toString('utf8').startsWith(marker)) continue;
      stale.add(source);
      named.add(name);
    }
    // The keys of those, and of repositories in the spec that no longer have one (trusted now).
    for (const n of await host.fs.list(f.keys)) {
      const m = /^nodeup-([a-z0-9-]+)\.asc$/.exec(n);
      if (m && named.has(m[1] ?? '') && !this.wanted.has(`${f.keys}/${n}`)) stale.add(`${f.keys}/${n}`);
    }
    // The folder of links is nodeup's alone.
    if (this.pm === 'apt') for (const n of await host.fs.list(aptOnlySourcesDir)) if (!this.wanted.has(`${aptOnlySourcesDir}/${n}`)) stale.add(`${aptOnlySourcesDir}/${n}`);
    return [...stale].sort();
  }

  diff(stale: readonly string[] | undefined): readonly Change[] {
    return (stale ?? []).map((p) => ({ field: 'remove', from: p, to: 'absent (no longer in spec.packages.repositories)' }));
  }

  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    for (const c of changes) {
      const p = String(c.from ?? '');
      if (!p.startsWith('/etc/')) throw new AgentError('TASK_FAILED', `refusing to remove ${p}: not a repository file of nodeup's`);
      await host.fs.remove(p);
    }
  }
}
