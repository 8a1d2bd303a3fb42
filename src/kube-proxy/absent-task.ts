// A `file:` task whose desired state is "no such file": removes what an earlier config wrote (kube-proxy's
// manifest once the CNI replaces kube-proxy). kubelet stops a static pod whose manifest is gone.
import type { Host } from '../engine/host/host.ts';
import type { Change, Task, TaskKey } from '../engine/task.ts';

export class AbsentFileTask implements Task<boolean> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[] = [];
  readonly path: string;
  constructor(path: string) {
    this.path = path;
    this.key = `file:${path}`;
  }
  async observe(host: Host): Promise<boolean> {
    return (await host.fs.stat(this.path)) !== undefined;
  }
  diff(exists: boolean | undefined): readonly Change[] {
    return exists ? [{ field: 'remove', from: 'present', to: 'absent' }] : [];
  }
  async apply(host: Host): Promise<void> {
    await host.fs.remove(this.path);
  }
}
