import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../engine/log.ts';
import { SeedServer, type GuestReport } from './seed-server.ts';
import { progressLine, waitForNodes, type NodeStatus } from './progress.ts';
import { instanceAddress, QemuProvider, qemuArgs, renderMetaData, type InstanceRecord } from './qemu.ts';
import { guestPort, renderInstances } from './cli.ts';

let server: SeedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function tmp(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-seed-'));
}

describe('SeedServer (real HTTP on 127.0.0.1)', () => {
  it('serves NoCloud seeds, files and assets, and refuses escapes', async () => {
    const dir = await tmp();
    await fsp.mkdir(path.join(dir, 'assets', 'etcd', '3.6.4', 'linux-amd64'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'assets', 'etcd', '3.6.4', 'linux-amd64', 'etcd.tar.gz'), 'ETCD');
    await fsp.writeFile(path.join(dir, 'nodeup'), 'BINARY');
    await fsp.writeFile(path.join(dir, 'secret'), 'SECRET');
    server = new SeedServer({ log: silentLogger, files: { nodeup: path.join(dir, 'nodeup'), 'nodeup-linux-amd64': path.join(dir, 'nodeup') }, assetsDir: path.join(dir, 'assets') });
    const port = await server.listen();
    server.setSeed('w-1', { metaData: renderMetaData('w-1', 'w-1-abc'), userData: '#cloud-config\n' });
    const get = async (p: string): Promise<[number, string]> => {
      const r = await fetch(`http://127.0.0.1:${port}${p}`);
      return [r.status, await r.text()];
    };
    expect(await get('/i/w-1/meta-data')).toEqual([200, 'instance-id: w-1-abc\nlocal-hostname: w-1\n']);
    expect(await get('/i/w-1/user-data')).toEqual([200, '#cloud-config\n']);
    expect(await get('/i/w-1/vendor-data')).toEqual([200, '']);
    expect((await get('/i/w-2/user-data'))[0]).toBe(404);
    expect(await get('/files/nodeup')).toEqual([200, 'BINARY']);
    expect((await get('/files/secret'))[0]).toBe(404);
    // the bootstrap script's mirror: the plain binary, and 404 for an .xz it was not given (it then falls back)
    expect(await get('/files/nodeup-linux-amd64')).toEqual([200, 'BINARY']);
    expect((await get('/files/nodeup-linux-amd64.xz'))[0]).toBe(404);
    expect(await get('/assets/etcd/3.6.4/linux-amd64/etcd.tar.gz')).toEqual([200, 'ETCD']);
    expect((await get('/assets/..%2Fsecret'))[0]).toBe(403);
    expect((await get('/assets/etcd/nope'))[0]).toBe(404);
  });

  it('hands POSTed events and receipts to the callback, parsed', async () => {
    const got: GuestReport[] = [];
    server = new SeedServer({ log: silentLogger, onReport: (r) => got.push(r), maxBodyBytes: 1000 });
    const port = await server.listen();
    const post = async (p: string, body: string): Promise<number> => (await fetch(`http://127.0.0.1:${port}${p}`, { method: 'POST', body })).status;
    expect(await post('/event/w-1/started', '{"uptime":41.5}')).toBe(204);
    expect(await post('/receipt/w-1', '{"result":"converged"}')).toBe(204);
    expect(await post('/receipt/Bad_Name', '{}')).toBe(404);
    expect(await post('/receipt/w-1', 'x'.repeat(2000))).toBe(413);
    expect(got.map((r) => [r.name, r.phase, r.body])).toEqual([
      ['w-1', 'started', { uptime: 41.5 }],
      ['w-1', 'receipt', { result: 'converged' }],
    ]);
  });
});

describe('waitForNodes', () => {
  const node = (name: string): NodeStatus => ({ name, phase: 'booting', phaseSinceMs: Date.now(), timings: { launchedAtMs: Date.now() - 35_000 } });

  it('marks a node failed when its machine stops and another on timeout, with progress lines', async () => {
    const a = node('a-1');
    const b = node('b-1');
    const lines: string[] = [];
    await waitForNodes({ nodes: [a, b], timeoutSec: 1.5, everySec: 0.5, progress: (l) => lines.push(l), alive: async (n) => n !== 'a-1' });
    expect(a.phase).toBe('failed');
    expect(a.reason).toMatch(/stopped before its receipt/);
    expect(b.phase).toBe('failed');
    expect(b.reason).toMatch(/no receipt within 1.5s \(last phase: booting\)/);
    expect(lines.some((l) => /^node b-1: booting 3\ds\n$/.test(l))).toBe(true);
  });

  it('returns when a poller delivers the receipt', async () => {
    const a = node('a-1');
    await waitForNodes({ nodes: [a], timeoutSec: 10, everySec: 5, progress: () => {}, pollEverySec: 0, poll: async (n) => void (n.phase = 'ready') });
    expect(a.phase).toBe('ready');
  });

  it('renders progress lines', () => {
    const n: NodeStatus = { name: 'w-1', phase: 'nodeup running', phaseSinceMs: 0, timings: { launchedAtMs: 0 } };
    expect(progressLine(n, 35_400)).toBe('node w-1: nodeup running 35s\n');
    n.phase = 'failed';
    n.reason = 'TASK_FAILED: x';
    expect(progressLine(n, 90_000)).toBe('node w-1: failed after 90s: TASK_FAILED: x\n');
  });
});

describe('qemuArgs', () => {
  it('boots the base kernel on a qcow2 overlay with the NoCloud seed in the SMBIOS serial', () => {
    const argv = qemuArgs({ name: 'w-1', dir: '/s/w-1', baseImage: '/img', accel: 'tcg', memoryMiB: 2048, cpus: 2, seedUrl: 'http://10.0.2.2:4000/i/w-1/', sshPort: 2222, kernelArgs: [] });
    const at = (flag: string): string | undefined => argv[argv.indexOf(flag) + 1];
    expect(at('-accel')).toBe('tcg,thread=multi');
    expect(at('-cpu')).toBe('max');
    expect(at('-kernel')).toBe('/img/vmlinuz');
    expect(at('-append')).toBe('root=/dev/vda rw console=ttyS0 net.ifnames=0');
    expect(at('-drive')).toBe('file=/s/w-1/disk.qcow2,if=virtio,format=qcow2,discard=unmap');
    expect(at('-smbios')).toBe('type=1,serial=ds=nocloud-net;s=http://10.0.2.2:4000/i/w-1/');
    expect(at('-netdev')).toBe('user,id=n0,hostname=w-1,hostfwd=tcp:127.0.0.1:2222-:22');
    expect(at('-serial')).toBe('file:/s/w-1/serial.log');
    expect(argv).toContain('-daemonize');
    const kvm = qemuArgs({ name: 'w-1', dir: '/s/w-1', baseImage: '/img', accel: 'kvm', memoryMiB: 1024, cpus: 1, seedUrl: 'x', sshPort: 1, kernelArgs: ['quiet'] });
    expect(kvm[kvm.indexOf('-accel') + 1]).toBe('kvm');
    expect(kvm[kvm.indexOf('-append') + 1]).toMatch(/ quiet$/);
  });

  it('adds one loopback hostfwd per --forward port after the ssh one, and --list names them', () => {
    const forwards = [{ guest: 6443, host: 41234 }, { guest: 80, host: 41235 }];
    const argv = qemuArgs({ name: 'cp', dir: '/s/cp', baseImage: '/img', accel: 'tcg', memoryMiB: 2048, cpus: 2, seedUrl: 'x', sshPort: 2222, forwards, kernelArgs: [] });
    expect(argv[argv.indexOf('-netdev') + 1]).toBe('user,id=n0,hostname=cp,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:41234-:6443,hostfwd=tcp:127.0.0.1:41235-:80');
    expect(instanceAddress({ sshPort: 2222, forwards, privateAddress: '192.168.77.11' })).toBe('ssh -p 2222 root@127.0.0.1 (port 6443 at 127.0.0.1:41234) (port 80 at 127.0.0.1:41235) (private 192.168.77.11)');
    expect(instanceAddress({ sshPort: 2222 })).toBe('ssh -p 2222 root@127.0.0.1');
  });

  it('--forward takes a guest port and refuses anything else, naming the flag', () => {
    expect(guestPort('6443')).toBe(6443);
    for (const bad of ['0', '65536', '6443:6443', '-1', 'http', '']) expect(() => guestPort(bad)).toThrow(/--forward takes a guest TCP port \(1-65535\)/);
  });
});

describe('QemuProvider.list', () => {
  it("gives each recorded instance its role, its ssh forward and its other forwards; a dead pid reads as stopped", async () => {
    const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-qemu-list-'));
    try {
      const rec = (name: string, more: Partial<InstanceRecord>): InstanceRecord => ({
        name, cluster: 'c1', instanceGroup: 'g', accel: 'tcg', createdAt: '2026-12-07T22:00:00.000Z', createdAtMs: 0, sshPort: 40022, baseImage: '/img', argv: [], ...more,
      });
      for (const r of [rec('cp-1', { role: 'control-plane', forwards: [{ guest: 6443, host: 41234 }] }), rec('old-1', { sshPort: 40023 }), rec('x-1', { cluster: 'c2' })]) {
        await fsp.mkdir(path.join(stateDir, r.name));
        await fsp.writeFile(path.join(stateDir, r.name, 'instance.json'), JSON.stringify(r));
      }
      await fsp.writeFile(path.join(stateDir, 'cp-1', 'qemu.pid'), `${process.pid}\n`); // alive, but not a qemu
      const list = await new QemuProvider({ stateDir, baseImage: '', log: silentLogger }).list('c1');
      expect(list.map((i) => [i.name, i.state, i.role, i.ssh, i.address])).toEqual([
        ['cp-1', 'stopped', 'control-plane', { host: '127.0.0.1', port: 40022 }, 'ssh -p 40022 root@127.0.0.1 (port 6443 at 127.0.0.1:41234)'],
        ['old-1', 'stopped', undefined, { host: '127.0.0.1', port: 40023 }, 'ssh -p 40023 root@127.0.0.1'],
      ]);
    } finally {
      await fsp.rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('renderInstances', () => {
  it('prints an aligned table', () => {
    expect(renderInstances([])).toBe('no instances\n');
    const t = renderInstances([{ name: 'w-1', provider: 'qemu', cluster: 'c1', instanceGroup: 'workers', state: 'running', id: '123', createdAt: '2026-11-23T10:00:00.000Z', result: 'converged', address: 'ssh -p 2222 root@127.0.0.1' }]);
    expect(t.split('\n')[0]).toMatch(/^NAME\s+CLUSTER\s+GROUP\s+STATE\s+RESULT\s+ID\s+CREATED\s+ADDRESS$/);
    expect(t).toContain('w-1   c1       workers  running  converged  123');
  });
});

describe('state store over HTTP (qemu guests read a host file:// store as http://)', async () => {
  const { HttpsStore } = await import('../statestore/https-store.ts');
  const { storeAllowFor, servedStoreDir } = await import('./launch-inputs.ts');
  const { configHash } = await import('../model/config.ts');

  it('serves what a worker may read through the real http store backend, and refuses CA keys', async () => {
    const dir = await tmp();
    const files: Record<string, string> = {
      'igconfig/workers/node.yaml': 'kind: NodeConfig\n',
      'pki/ca.crt': 'CERT',
      'pki/ca.key': 'KEY',
      'secrets/bootstrap-token': 'abcdef.0123456789abcdef',
    };
    for (const [k, v] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(dir, k)), { recursive: true });
      await fsp.writeFile(path.join(dir, k), v);
    }
    server = new SeedServer({ log: silentLogger, storeDir: dir, storeAllow: storeAllowFor({ role: 'worker', instanceGroup: 'workers' }) });
    const port = await server.listen();
    const store = new HttpsStore(`http://127.0.0.1:${port}/store`);
    expect((await store.read('igconfig/workers/node.yaml'))?.toString()).toBe('kind: NodeConfig\n');
    expect((await store.read('pki/ca.crt'))?.toString()).toBe('CERT');
    expect((await store.read('secrets/bootstrap-token'))?.toString()).toBe('abcdef.0123456789abcdef');
    await expect(store.read('pki/ca.key')).rejects.toThrow(/HTTP 403/);
    expect(storeAllowFor({ role: 'control-plane', instanceGroup: 'cp' })('pki/ca.key')).toBe(true);

    const cfg = { raw: Buffer.from(files['igconfig/workers/node.yaml']!), hash: configHash(files['igconfig/workers/node.yaml']!), cluster: 'c', instanceGroup: 'workers', role: 'worker' as const };
    expect(await servedStoreDir(`file://${dir}`, cfg)).toBe(dir);
    await expect(servedStoreDir(`file://${dir}`, { ...cfg, hash: configHash('other') })).rejects.toThrow(/differs from --node-config; publish the NodeConfig/);
    await expect(servedStoreDir('s3://b/c', cfg)).rejects.toThrow(/serves a file:\/\/ store/);
  });
});

describe('chooseAccel', async () => {
  const { chooseAccel, accelArgs } = await import('./accel.ts');
  it('honours a forced choice and reuses this boot\'s probe result', async () => {
    expect(await chooseAccel({ kernel: '/nonexistent', log: silentLogger, forced: 'tcg' })).toBe('tcg');
    const dir = await tmp();
    const cacheFile = path.join(dir, 'accel.json');
    const bootId = (await fsp.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    await fsp.writeFile(cacheFile, JSON.stringify({ bootId, accel: 'kvm' }));
    expect(await chooseAccel({ kernel: '/nonexistent', log: silentLogger, cacheFile })).toBe('kvm');
    expect(accelArgs('tcg')).toEqual(['-accel', 'tcg,thread=multi', '-cpu', 'max']);
  });
});
