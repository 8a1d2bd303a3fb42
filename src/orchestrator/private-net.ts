// A private L2 link between two qemu guests (a control plane and a worker), so they reach each
// other at fixed addresses while each keeps QEMU user networking for the host and the internet.
// The link is QEMU's UDP socket netdev between two loopback ports: frames travel only over
// 127.0.0.1, and the guest-side subnet exists only inside the guests.
//   <stateDir>/networks/<name>.json   {name, subnet, ports: [a, b], members: [{instance, index}]}
// Two members at most (point to point); a third is refused with a clear error.
import * as dgram from 'node:dgram';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { AgentError } from '../agent/errors.ts';

export interface NetworkMember {
  readonly instance: string;
  readonly index: 0 | 1;
}

export interface NetworkRecord {
  readonly name: string;
  /** The first three octets of the guests' /24, e.g. "192.168.77". */
  readonly subnet: string;
  readonly ports: readonly [number, number];
  readonly members: readonly NetworkMember[];
}

export interface Attachment {
  readonly network: string;
  readonly index: 0 | 1;
  readonly localPort: number;
  readonly remotePort: number;
  readonly mac: string;
  /** The guest's address with prefix length, e.g. 192.168.77.11/24. */
  readonly address: string;
}

/** The attachment of member `index` of a network. Pure. */
export function attachmentOf(net: NetworkRecord, index: 0 | 1): Attachment {
  return {
    network: net.name,
    index,
    localPort: net.ports[index],
    remotePort: net.ports[index === 0 ? 1 : 0],
    mac: `52:54:00:77:00:${(0x11 + index).toString(16)}`,
    address: `${net.subnet}.${11 + index}/24`,
  };
}

/** QEMU arguments for the second NIC. Pure. */
export function privateNetArgs(a: Attachment): string[] {
  return [
    '-netdev', `socket,id=p0,udp=127.0.0.1:${a.remotePort},localaddr=127.0.0.1:${a.localPort}`,
    '-device', `virtio-net-pci,netdev=p0,mac=${a.mac}`,
  ];
}

/** The guest's systemd-networkd file for the link. Pure. */
export function renderPrivateNetwork(a: Attachment): string {
  return ['# managed by nodeup launch: the private link to the other guest', '[Match]', `MACAddress=${a.mac}`, '', '[Network]', `Address=${a.address}`, 'LinkLocalAddressing=no', ''].join('\n');
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const validName = /^[a-z0-9][a-z0-9-]{0,30}$/;

/**
 * Joins `instance` to the named network, creating it when absent; members whose instance folder is
 * gone (deleted) free their place. `alive(instance)` tells whether a member still exists.
 */
export async function joinNetwork(stateDir: string, name: string, instance: string, alive: (instance: string) => Promise<boolean>, subnet = '192.168.77'): Promise<Attachment> {
  if (!validName.test(name)) throw new AgentError('USAGE', `--network ${name}: expected lowercase letters, digits and dashes`, { details: { field: '--network' } });
  const file = path.join(stateDir, 'networks', `${name}.json`);
  let net: NetworkRecord | undefined;
  const raw = await fsp.readFile(file, 'utf8').catch(() => undefined);
  if (raw) net = JSON.parse(raw) as NetworkRecord;
  if (!net) net = { name, subnet, ports: [await freeUdpPort(), await freeUdpPort()], members: [] };
  const members: NetworkMember[] = [];
  for (const m of net.members) if (m.instance !== instance && (await alive(m.instance))) members.push(m);
  const used = new Set(members.map((m) => m.index));
  const index = ([0, 1] as const).find((i) => !used.has(i));
  if (index === undefined) {
    throw new AgentError('ORCHESTRATOR', `network ${name} already links ${members.map((m) => m.instance).join(' and ')}: a private link holds two guests; delete one or use another --network`, {
      details: { network: name, members: members.map((m) => m.instance) },
    });
  }
  const next: NetworkRecord = { ...net, members: [...members, { instance, index }].sort((a, b) => a.index - b.index) };
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(`${file}.tmp`, JSON.stringify(next, null, 2) + '\n');
  await fsp.rename(`${file}.tmp`, file);
  return attachmentOf(next, index);
}
