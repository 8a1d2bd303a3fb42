// The qemu provider: each instance is a copy-on-write qcow2 overlay on the base image, booted with
// the base image's kernel and initrd (root=/dev/vda), QEMU user networking, and a NoCloud seed read
// over HTTP from the orchestrator's SeedServer (SMBIOS serial `ds=nocloud-net;s=...`).
// Instances outlive the launch command (qemu -daemonize); their state lives in
//   <stateDir>/<name>/{instance.json, disk.qcow2, serial.log, qemu.pid, user-data, events.jsonl, receipt.json}
// Orchestrator code running on the operator's machine, not node work: it spawns qemu itself.
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AgentError, errorMessage } from '../engine/errors.ts';
import { sleep } from '../engine/retry.ts';
import type { Logger } from '../engine/log.ts';
import { accelArgs, type Accel } from './accel.ts';
import type { InstanceInfo, InstanceRequest, NodeRole, Provider } from './provider.ts';
import type { SeedServer } from './seed-server.ts';
import { leaveNetwork, privateNetArgs, type Attachment } from './private-net.ts';

const run = promisify(execFile);

export interface QemuOptions {
  readonly stateDir: string;
  /** Folder with rootfs.img, vmlinuz, initrd.img (scripts/vm/base-image.sh). */
  readonly baseImage: string;
  readonly log: Logger;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** Required for launch (not for list/delete). */
  readonly accel?: Accel;
  readonly seed?: SeedServer;
  /** Grow each overlay to this size (qemu-img size syntax); the base ext4 fills what it has. */
  readonly diskSize?: string;
  readonly qemu?: string;
  /** Extra kernel command-line words. */
  readonly kernelArgs?: readonly string[];
  /** Private links (private-net.ts) by instance name. */
  readonly attachments?: ReadonlyMap<string, Attachment>;
  /** Guest TCP ports to forward from a free port on the host's loopback (e.g. 6443 for kubectl on the host). */
  readonly forwardPorts?: readonly number[];
}

/** A guest TCP port reachable at 127.0.0.1:host (QEMU user-mode hostfwd). */
export interface PortForward {
  readonly guest: number;
  readonly host: number;
}

export interface InstanceRecord {
  readonly name: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly role?: NodeRole;
  readonly accel: Accel;
  readonly createdAt: string;
  readonly createdAtMs: number;
  readonly sshPort: number;
  /** --forward: guest ports reachable on the host's loopback. */
  readonly forwards?: readonly PortForward[];
  readonly baseImage: string;
  readonly argv: readonly string[];
  /** The guest's address on its private network, when it has one. */
  readonly privateAddress?: string;
  /** That network's name (--delete takes the guest out of it; the last one out stops its hub). */
  readonly network?: string;
}

export interface QemuArgsInput {
  readonly name: string;
  readonly dir: string;
  readonly baseImage: string;
  readonly accel: Accel;
  readonly memoryMiB: number;
  readonly cpus: number;
  readonly seedUrl: string;
  readonly sshPort: number;
  readonly forwards?: readonly PortForward[];
  readonly kernelArgs: readonly string[];
  readonly attachment?: Attachment | undefined;
}

/** The qemu-system-x86_64 argument list for one instance. Pure. */
export function qemuArgs(i: QemuArgsInput): string[] {
  return [
    '-name', i.name,
    '-machine', 'q35',
    ...accelArgs(i.accel),
    '-smp', String(i.cpus),
    '-m', String(i.memoryMiB),
    '-nodefaults',
    '-display', 'none',
    '-kernel', path.join(i.baseImage, 'vmlinuz'),
    '-initrd', path.join(i.baseImage, 'initrd.img'),
    '-append', ['root=/dev/vda', 'rw', 'console=ttyS0', 'net.ifnames=0', ...i.kernelArgs].join(' '),
    '-drive', `file=${path.join(i.dir, 'disk.qcow2')},if=virtio,format=qcow2,discard=unmap`,
    '-netdev', [`user,id=n0,hostname=${i.name}`, ...[{ host: i.sshPort, guest: 22 }, ...(i.forwards ?? [])].map((f) => `hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`)].join(','),
    '-device', 'virtio-net-pci,netdev=n0',
    ...(i.attachment ? privateNetArgs(i.attachment) : []),
    '-device', 'virtio-rng-pci',
    '-smbios', `type=1,serial=ds=nocloud-net;s=${i.seedUrl}`,
    '-serial', `file:${path.join(i.dir, 'serial.log')}`,
    '-pidfile', path.join(i.dir, 'qemu.pid'),
    '-daemonize',
  ];
}

/** How people reach an instance: its ssh forward, the other forwards, its private address. Pure. */
export function instanceAddress(r: Pick<InstanceRecord, 'sshPort' | 'forwards' | 'privateAddress'>): string {
  const fwd = (r.forwards ?? []).map((f) => ` (port ${f.guest} at 127.0.0.1:${f.host})`).join('');
  return `ssh -p ${r.sshPort} root@127.0.0.1${fwd}${r.privateAddress ? ` (private ${r.privateAddress})` : ''}`;
}

/** The NoCloud meta-data for an instance. Pure. */
export function renderMetaData(name: string, instanceId: string): string {
  return `instance-id: ${instanceId}\nlocal-hostname: ${name}\n`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}

/** Whether a pid is a live qemu process (not a recycled pid). */
export async function qemuAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const cmd = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmd.includes('qemu-system');
}

export class QemuProvider implements Provider {
  readonly name = 'qemu';
  private readonly o: QemuOptions;

  constructor(opts: QemuOptions) {
    this.o = opts;
  }

  dirOf(name: string): string {
    return path.join(this.o.stateDir, name);
  }

  async launch(requests: readonly InstanceRequest[]): Promise<readonly InstanceInfo[]> {
    const { seed, accel } = this.o;
    if (!seed || !accel) throw new AgentError('ORCHESTRATOR', 'qemu provider: launch needs a seed server and an accelerator');
    for (const f of ['rootfs.img', 'vmlinuz', 'initrd.img']) {
      if (!(await exists(path.join(this.o.baseImage, f)))) {
        throw new AgentError('ORCHESTRATOR', `base image ${this.o.baseImage} has no ${f}: build it with scripts/vm/base-image.sh and pass its folder as --base-image`, {
          details: { baseImage: this.o.baseImage, missing: f },
        });
      }
    }
    // Pin the image folder itself: base-current is a symlink a rebuild moves.
    const image = await fsp.realpath(this.o.baseImage);
    const out: InstanceInfo[] = [];
    for (const r of requests) {
      const dir = this.dirOf(r.name);
      const pid = Number((await fsp.readFile(path.join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
      if (await qemuAlive(pid)) {
        throw new AgentError('ORCHESTRATOR', `instance ${r.name} is already running (pid ${pid}): delete it first with nodeup launch --delete ${r.name}`, {
          details: { instance: r.name, pid },
        });
      }
      await fsp.rm(dir, { recursive: true, force: true });
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', path.join(image, 'rootfs.img'), path.join(dir, 'disk.qcow2'), ...(this.o.diskSize ? [this.o.diskSize] : [])]).catch((err: unknown) => {
        throw new AgentError('ORCHESTRATOR', `cannot create the disk of ${r.name}: ${errorMessage(err)}`, { cause: err, details: { instance: r.name } });
      });
      const createdAtMs = Date.now();
      const instanceId = `${r.name}-${createdAtMs.toString(36)}`;
      seed.setSeed(r.name, { metaData: renderMetaData(r.name, instanceId), userData: r.userData });
      await fsp.writeFile(path.join(dir, 'user-data'), r.userData, { mode: 0o600 });
      const sshPort = await freePort();
      const forwards: PortForward[] = [];
      for (const guest of this.o.forwardPorts ?? []) forwards.push({ guest, host: await freePort() });
      const argv = qemuArgs({
        name: r.name,
        dir,
        baseImage: image,
        accel,
        memoryMiB: this.o.memoryMiB ?? 2048,
        cpus: this.o.cpus ?? 2,
        seedUrl: `http://10.0.2.2:${seed.port}/i/${r.name}/`,
        sshPort,
        forwards,
        kernelArgs: this.o.kernelArgs ?? [],
        attachment: this.o.attachments?.get(r.name),
      });
      const rec: InstanceRecord = {
        name: r.name,
        cluster: r.cluster,
        instanceGroup: r.instanceGroup,
        ...(r.role ? { role: r.role } : {}),
        accel,
        createdAt: new Date(createdAtMs).toISOString(),
        createdAtMs,
        sshPort,
        ...(forwards.length > 0 ? { forwards } : {}),
        baseImage: image,
        argv,
        ...(this.o.attachments?.get(r.name) ? { privateAddress: this.o.attachments.get(r.name)!.address, network: this.o.attachments.get(r.name)!.network } : {}),
      };
      await fsp.writeFile(path.join(dir, 'instance.json'), JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
      this.o.log.info({ instance: r.name, accel, sshPort, memoryMiB: this.o.memoryMiB ?? 2048, cpus: this.o.cpus ?? 2 }, 'starting qemu');
      try {
        await run(this.o.qemu ?? 'qemu-system-x86_64', argv, { timeout: 60_000 });
      } catch (err: unknown) {
        const stderr = (err as { stderr?: string }).stderr ?? '';
        throw new AgentError('ORCHESTRATOR', `qemu failed to start ${r.name}: ${stderr.trim().split('\n').pop() ?? errorMessage(err)}`, {
          cause: err,
          details: { instance: r.name, stderr: stderr.slice(-2000) },
        });
      }
      const newPid = Number((await fsp.readFile(path.join(dir, 'qemu.pid'), 'utf8')).trim());
      out.push({ name: r.name, provider: this.name, cluster: r.cluster, instanceGroup: r.instanceGroup, state: 'running', id: String(newPid), createdAt: rec.createdAt, address: instanceAddress({ sshPort, forwards }) });
    }
    return out;
  }

  async record(name: string): Promise<InstanceRecord | undefined> {
    const raw = await fsp.readFile(path.join(this.dirOf(name), 'instance.json'), 'utf8').catch(() => undefined);
    return raw ? (JSON.parse(raw) as InstanceRecord) : undefined;
  }

  async pid(name: string): Promise<number> {
    return Number((await fsp.readFile(path.join(this.dirOf(name), 'qemu.pid'), 'utf8').catch(() => '')).trim());
  }

  async list(cluster?: string): Promise<readonly InstanceInfo[]> {
    const names = await fsp.readdir(this.o.stateDir).catch(() => [] as string[]);
    const out: InstanceInfo[] = [];
    for (const name of names.sort()) {
      const rec = await this.record(name);
      if (!rec || (cluster && rec.cluster !== cluster)) continue;
      const pid = await this.pid(name);
      const receipt = await fsp.readFile(path.join(this.dirOf(name), 'receipt.json'), 'utf8').catch(() => undefined);
      let result: string | undefined;
      try {
        result = receipt ? String((JSON.parse(receipt) as { result?: unknown }).result) : undefined;
      } catch {
        result = 'unreadable';
      }
      out.push({
        name,
        provider: this.name,
        cluster: rec.cluster,
        instanceGroup: rec.instanceGroup,
        state: (await qemuAlive(pid)) ? 'running' : 'stopped',
        id: String(pid || '-'),
        createdAt: rec.createdAt,
        ...(result ? { result } : {}),
        address: instanceAddress(rec),
        ...(rec.role ? { role: rec.role } : {}),
        ssh: { host: '127.0.0.1', port: rec.sshPort },
      });
    }
    return out;
  }

  async delete(names: readonly string[]): Promise<void> {
    const missing: string[] = [];
    for (const n of names) if (!(await this.record(n))) missing.push(n);
    if (missing.length > 0) {
      throw new AgentError('ORCHESTRATOR', `no qemu instance named ${missing.join(', ')} in ${this.o.stateDir} (see nodeup launch --list)`, {
        details: { missing, stateDir: this.o.stateDir },
      });
    }
    for (const n of names) {
      const rec = await this.record(n);
      await this.stop(n);
      if (rec?.network) await leaveNetwork(this.o.stateDir, rec.network, n);
      await fsp.rm(this.dirOf(n), { recursive: true, force: true });
      this.o.log.info({ instance: n }, 'instance deleted');
    }
  }

  /** Stops the instance's qemu: SIGTERM, then SIGKILL after 10 s. */
  async stop(name: string): Promise<void> {
    const pid = await this.pid(name);
    if (!(await qemuAlive(pid))) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100 && (await qemuAlive(pid)); i++) await sleep(100);
    if (await qemuAlive(pid)) process.kill(pid, 'SIGKILL');
  }

  async serialTail(name: string, lines = 60): Promise<string> {
    const text = await fsp.readFile(path.join(this.dirOf(name), 'serial.log'), 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  }
}
