import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { attachmentOf, hubAlive, hubArgs, joinNetwork, leaveNetwork, networkCapacity, planJoin, planLeave, privateNetArgs, renderPrivateNetwork, type NetworkRecord } from './private-net.ts';

const net: NetworkRecord = {
  name: 'lab',
  subnet: '192.168.77',
  hub: { ports: Array.from({ length: networkCapacity }, (_, i) => 41000 + i) },
  memberPorts: Array.from({ length: networkCapacity }, (_, i) => 42000 + i),
  members: [],
};

function hasQemu(): boolean {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('private network records (pure)', () => {
  it('gives five (and more) guests .11, .12, .13 ... each with its own slot, MAC and ports', () => {
    let n = net;
    const got: string[] = [];
    for (const name of ['cp-1', 'cp-2', 'cp-3', 'w-1', 'cp-4']) {
      const r = planJoin(n, name, n.members);
      n = r.next;
      got.push(`${name}=${attachmentOf(n, r.index).address}`);
    }
    expect(got).toEqual(['cp-1=192.168.77.11/24', 'cp-2=192.168.77.12/24', 'cp-3=192.168.77.13/24', 'w-1=192.168.77.14/24', 'cp-4=192.168.77.15/24']);
    const a = attachmentOf(n, 4);
    expect(a).toEqual({ network: 'lab', index: 4, localPort: 42004, remotePort: 41004, mac: '52:54:00:77:00:15', address: '192.168.77.15/24' });
    expect(privateNetArgs(a)).toEqual(['-netdev', 'socket,id=p0,udp=127.0.0.1:41004,localaddr=127.0.0.1:42004', '-device', 'virtio-net-pci,netdev=p0,mac=52:54:00:77:00:15']);
    expect(renderPrivateNetwork(a)).toContain('MACAddress=52:54:00:77:00:15\n\n[Network]\nAddress=192.168.77.15/24');
  });

  it('gives a deleted member\'s slot to the next guest, re-joins an instance in place of its old entry, refuses a full network', () => {
    let n = net;
    for (const name of ['cp-1', 'cp-2', 'cp-3']) n = planJoin(n, name, n.members).next;
    // cp-2 is gone (deleted, or its folder removed): its slot 1 goes to the replacement
    const live = n.members.filter((m) => m.instance !== 'cp-2');
    const r = planJoin(n, 'cp-4', live);
    expect(r.index).toBe(1);
    expect(r.next.members.map((m) => `${m.instance}:${m.index}`)).toEqual(['cp-1:0', 'cp-4:1', 'cp-3:2']);
    const rejoin = planJoin(r.next, 'cp-3', r.next.members);
    expect(rejoin.index).toBe(2);
    expect(rejoin.next.members).toHaveLength(3);
    let full = net;
    for (let i = 0; i < networkCapacity; i++) full = planJoin(full, `g-${i}`, full.members).next;
    expect(() => planJoin(full, 'one-more', full.members)).toThrow(/network lab is full \(8 guests/);
  });

  it('the last member out empties the network', () => {
    let n = net;
    for (const name of ['a', 'b']) n = planJoin(n, name, n.members).next;
    const one = planLeave(n, 'a');
    expect(one.empty).toBe(false);
    expect(planLeave(one.next, 'b').empty).toBe(true);
    expect(planLeave(one.next, 'unknown').empty).toBe(false);
  });

  it('the hub is a QEMU with no machine: one socket netdev per slot, all on hub 0', () => {
    const args = hubArgs(net, '/s/networks/lab.hub.pid');
    expect(args.slice(0, 8)).toEqual(['-name', 'nodeup-net-lab', '-machine', 'none', '-nodefaults', '-display', 'none', '-netdev']);
    expect(args).toContain('socket,id=s0,udp=127.0.0.1:42000,localaddr=127.0.0.1:41000');
    expect(args).toContain(`hubport,id=h${networkCapacity - 1},hubid=0,netdev=s${networkCapacity - 1}`);
    expect(args.slice(-3)).toEqual(['-pidfile', '/s/networks/lab.hub.pid', '-daemonize']);
  });
});

describe.skipIf(!hasQemu())('private network hub (a real QEMU process)', () => {
  it('carries frames between three members, outlives nothing: the last member out stops it', async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-net-'));
    const alive = new Set<string>();
    const isAlive = async (n: string): Promise<boolean> => alive.has(n);
    const atts = [];
    for (const name of ['cp-1', 'cp-2', 'cp-3']) {
      atts.push(await joinNetwork(dir, 'hubtest', name, isAlive));
      alive.add(name);
    }
    const rec = JSON.parse(await fsp.readFile(path.join(dir, 'networks/hubtest.json'), 'utf8')) as NetworkRecord;
    const pid = rec.hub.pid;
    try {
      expect(atts.map((a) => a.address)).toEqual(['192.168.77.11/24', '192.168.77.12/24', '192.168.77.13/24']);
      expect(await hubAlive(pid, 'hubtest')).toBe(true);
      // Stand-ins for the guests' NICs: each binds its local port and sends to its hub port.
      const socks = await Promise.all(
        atts.map(
          (a) =>
            new Promise<dgram.Socket>((resolve) => {
              const s = dgram.createSocket('udp4');
              s.bind(a.localPort, '127.0.0.1', () => resolve(s));
            }),
        ),
      );
      const got: string[][] = [[], [], []];
      socks.forEach((s, i) => s.on('message', (m) => got[i]!.push(m.subarray(6, 12).toString('hex'))));
      const frame = Buffer.alloc(60);
      frame.fill(0xff, 0, 6); // broadcast, e.g. an ARP request
      Buffer.from('525400770011', 'hex').copy(frame, 6);
      socks[0]!.send(frame, atts[0]!.remotePort, '127.0.0.1');
      for (let i = 0; i < 50 && (got[1]!.length === 0 || got[2]!.length === 0); i++) await new Promise((r) => setTimeout(r, 100));
      for (const s of socks) s.close();
      expect(got).toEqual([[], ['525400770011'], ['525400770011']]);
      // a second join of the same network reuses the running hub
      const again = await joinNetwork(dir, 'hubtest', 'cp-2', isAlive);
      expect(again.index).toBe(1);
      expect((JSON.parse(await fsp.readFile(path.join(dir, 'networks/hubtest.json'), 'utf8')) as NetworkRecord).hub.pid).toBe(pid);

      await leaveNetwork(dir, 'hubtest', 'cp-1');
      await leaveNetwork(dir, 'hubtest', 'cp-2');
      expect(await hubAlive(pid, 'hubtest')).toBe(true);
      await leaveNetwork(dir, 'hubtest', 'cp-3');
      expect(await hubAlive(pid, 'hubtest')).toBe(false);
      expect(await fsp.readdir(path.join(dir, 'networks'))).toEqual([]);
    } finally {
      if (await hubAlive(pid, 'hubtest')) process.kill(pid!, 'SIGKILL');
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a bad network name', async () => {
    await expect(joinNetwork('/nonexistent', 'Bad Name', 'x', async () => false)).rejects.toThrow(/--network Bad Name/);
  });
});
