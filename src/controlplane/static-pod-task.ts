// A static pod manifest (`file:<path>`) that kubelet restarts when a certificate it reads is
// renewed: the cert task notifies it, and react() rewrites the manifest with a
// `nodeup.dev/restarted-at` annotation (kubelet restarts a static pod whose manifest changed).
// observe() ignores that annotation, so a converged node still has an empty plan.
import * as path from 'node:path/posix';
import type { Host, FileStat } from '../engine/host/host.ts';
import { shortHash } from '../engine/tasks/file.ts';
import { fieldChange, octal, type Change, type Task, type TaskKey } from '../engine/task.ts';

const restartLine = /^ {4}nodeup\.dev\/restarted-at: .*\n/m;
const managedAnnotation = "    nodeup.dev/managed: 'true'\n";

/** The manifest without the restart annotation. Pure. */
export function withoutRestartMark(text: string): string {
  return text.replace(restartLine, '');
}

/** The manifest with a restart annotation after the managed one. Pure. */
export function withRestartMark(text: string, at: string): string {
  const clean = withoutRestartMark(text);
  return clean.includes(managedAnnotation) ? clean.replace(managedAnnotation, `${managedAnnotation}    nodeup.dev/restarted-at: '${at}'\n`) : clean;
}

interface Actual {
  readonly hash: string;
  readonly stat: FileStat;
}

export interface StaticPodSpec {
  readonly path: string;
  readonly content: string;
  readonly after?: readonly TaskKey[];
}

export class StaticPodTask implements Task<Actual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly path: string;
  readonly reaction = 'restart';
  private readonly spec: StaticPodSpec;
  private readonly hash: string;
  constructor(spec: StaticPodSpec) {
    this.spec = spec;
    this.key = `file:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.hash = shortHash(spec.content);
  }
  async observe(host: Host): Promise<Actual | undefined> {
    const data = await host.fs.read(this.spec.path);
    const stat = await host.fs.stat(this.spec.path);
    if (!data || !stat) return undefined;
    return { hash: shortHash(withoutRestartMark(data.toString('utf8'))), stat };
  }
  diff(a: Actual | undefined): readonly Change[] {
    if (!a) return [{ field: 'create', to: `${this.hash} mode 0600` }];
    const out: Change[] = [];
    if (a.hash !== this.hash) out.push(fieldChange('content', a.hash, this.hash));
    if (a.stat.mode !== 0o600) out.push(fieldChange('mode', octal(a.stat.mode), '0600'));
    return out;
  }
  async apply(host: Host, changes: readonly Change[]): Promise<void> {
    if (changes.every((c) => c.field === 'mode')) return host.fs.chmod(this.spec.path, 0o600);
    await host.fs.mkdirp(path.dirname(this.spec.path), 0o755);
    await host.fs.writeAtomic(this.spec.path, this.spec.content, { mode: 0o600 });
  }
  async react(host: Host): Promise<void> {
    await host.fs.writeAtomic(this.spec.path, withRestartMark(this.spec.content, new Date(host.now()).toISOString()), { mode: 0o600 });
  }
}
