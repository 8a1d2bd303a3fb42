// Sealing a baked image: remove what belongs to the build machine, not to the nodes booted from the
// image (image-builder's sysprep role, done as data). `sealSteps` is the pure list; `applySeal`
// runs it through the Host, so it works on the live build VM and on an offline root alike.
import * as path from 'node:path/posix';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';

export type SealStep =
  /** On a live build machine only: stop what would write again at shutdown, before cleaning up. */
  | { readonly action: 'run-live'; readonly argv: readonly string[]; readonly why: string }
  /** Empty the file, keeping it and its mode (systemd regenerates an empty machine-id at boot). */
  | { readonly action: 'truncate'; readonly path: string; readonly why: string }
  | { readonly action: 'remove'; readonly path: string; readonly why: string }
  /** Replace an existing file's content (mode and owner kept). */
  | { readonly action: 'reset'; readonly path: string; readonly content: string; readonly why: string }
  /** Remove the entries of a directory whose names match, except `keep`. */
  | { readonly action: 'remove-children'; readonly dir: string; readonly match: RegExp; readonly keep?: readonly string[]; readonly why: string }
  /** Every file under the tree: rotated ones (`rotated`) are removed, the others truncated. */
  | { readonly action: 'truncate-tree'; readonly dir: string; readonly rotated: RegExp; readonly why: string }
  /** A file in /root and in every /home/<user>. */
  | { readonly action: 'remove-in-homes'; readonly name: string; readonly why: string };

export interface SealOptions {
  /** The boot config the image must not keep (the bake's own); undefined keeps it. */
  readonly bootConfigPath?: string;
  /** Files of the bake run that name the build machine (its receipt). */
  readonly extraRemovals?: readonly string[];
}

/** What sealing does, in order. Pure. */
export function sealSteps(opts: SealOptions = {}): readonly SealStep[] {
  return [
    { action: 'run-live', argv: ['journalctl', '--relinquish-var'], why: 'journald writes to /run from now on, not into the image' },
    { action: 'run-live', argv: ['systemctl', 'stop', 'systemd-random-seed.service', 'systemd-update-utmp.service'], why: 'they save a random seed and a wtmp record at shutdown: do it now, then remove them' },
    { action: 'truncate', path: '/etc/machine-id', why: 'machine-id is per machine: systemd makes a new one at first boot' },
    { action: 'reset', path: '/etc/hostname', content: 'localhost\n', why: 'the build machine name: the cloud (cloud-init) names each node' },
    { action: 'remove', path: '/var/lib/dbus/machine-id', why: 'a copy of the machine-id (a symlink to /etc/machine-id is kept)' },
    { action: 'remove-children', dir: '/var/lib/cloud', match: /.*/, keep: ['seed'], why: 'cloud-init state: the next boot is a new instance (cloud-init clean)' },
    { action: 'remove-children', dir: '/var/log', match: /^cloud-init(-output)?\.log$/, why: 'cloud-init logs of the build' },
    { action: 'remove-children', dir: '/etc/ssh', match: /^ssh_host_.*key(\.pub)?$/, why: 'SSH host keys: every node gets its own (cloud-init regenerates them)' },
    { action: 'remove-children', dir: '/var/log/journal', match: /.*/, why: 'the build machine journal' },
    { action: 'truncate-tree', dir: '/var/log', rotated: /(\.\d+|\.gz|\.xz|\.old|-\d{8})$/, why: 'logs of the build' },
    { action: 'remove-in-homes', name: '.bash_history', why: 'shell history' },
    { action: 'remove-in-homes', name: '.lesshst', why: 'shell history' },
    { action: 'remove', path: '/var/lib/systemd/random-seed', why: 'a shared random seed would be the same on every node' },
    ...(opts.bootConfigPath ? [{ action: 'remove' as const, path: opts.bootConfigPath, why: 'the boot config names the build cluster: user-data writes the real one' }] : []),
    ...(opts.extraRemovals ?? []).map((p) => ({ action: 'remove' as const, path: p, why: 'state of the bake run' })),
  ];
}

export interface SealResult {
  readonly removed: readonly string[];
  /** Emptied or reset to a neutral content. */
  readonly truncated: readonly string[];
}

async function walkFiles(host: Host, dir: string, out: string[]): Promise<void> {
  for (const name of await host.fs.list(dir)) {
    const p = path.join(dir, name);
    const st = await host.fs.stat(p);
    if (st?.kind === 'dir') await walkFiles(host, p, out);
    else if (st?.kind === 'file') out.push(p);
  }
}

/** Runs the steps through the Host; a path that does not exist is simply skipped. */
export async function applySeal(host: Host, steps: readonly SealStep[], log: Logger): Promise<SealResult> {
  const removed: string[] = [];
  const truncated: string[] = [];
  const remove = async (p: string): Promise<void> => {
    if (!(await host.fs.stat(p))) return;
    await host.fs.remove(p);
    removed.push(p);
  };
  const truncate = async (p: string): Promise<void> => {
    const st = await host.fs.stat(p);
    if (st?.kind !== 'file' || st.size === 0) return;
    await host.fs.writeAtomic(p, '', { mode: st.mode, uid: st.uid, gid: st.gid });
    truncated.push(p);
  };
  const live = host.root === '/';
  for (const step of steps) {
    switch (step.action) {
      case 'run-live':
        if (live) {
          const [file, ...args] = step.argv;
          try {
            await host.run(file!, args);
          } catch (err: unknown) {
            // a machine without systemd has nothing to stop: the removals below still apply
            log.warn({ argv: step.argv, err }, 'seal: command failed, continuing');
          }
        }
        break;
      case 'truncate': {
        const st = await host.fs.stat(step.path);
        if (st?.kind === 'file') await truncate(step.path);
        break;
      }
      case 'reset': {
        const st = await host.fs.stat(step.path);
        const now = await host.fs.read(step.path);
        if (st?.kind === 'file' && now !== undefined && now.toString('utf8') !== step.content) {
          await host.fs.writeAtomic(step.path, step.content, { mode: st.mode, uid: st.uid, gid: st.gid });
          truncated.push(step.path);
        }
        break;
      }
      case 'remove': {
        const st = await host.fs.stat(step.path);
        if (st && !(st.kind === 'symlink' && step.path === '/var/lib/dbus/machine-id')) await remove(step.path);
        break;
      }
      case 'remove-children':
        for (const name of await host.fs.list(step.dir)) {
          if (step.match.test(name) && !(step.keep ?? []).includes(name)) await remove(path.join(step.dir, name));
        }
        break;
      case 'truncate-tree': {
        const files: string[] = [];
        await walkFiles(host, step.dir, files);
        for (const f of files) {
          if (step.rotated.test(f)) await remove(f);
          else await truncate(f);
        }
        break;
      }
      case 'remove-in-homes': {
        const homes = ['/root', ...(await host.fs.list('/home')).map((u) => `/home/${u}`)];
        for (const h of homes) await remove(path.join(h, step.name));
        break;
      }
    }
  }
  log.info({ removed: removed.length, truncated: truncated.length }, 'image sealed');
  return { removed, truncated };
}
