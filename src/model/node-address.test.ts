// The node IP: default route, CIDR and interface selection, the no-match error; /proc/net/route
// parsing; the networking schema (nodeAddress, bridge) validation.
import { describe, expect, it } from 'vitest';
import { NodeConfig, nodeCIDRMaskSize } from './config.ts';
import { AgentError } from '../engine/errors.ts';
import { parseDefaultRouteInterface } from '../engine/host/facts.ts';
import { testFacts } from '../../tests/support/test-host.ts';
import { selectNodeIp } from './node-address.ts';

// A QEMU lab guest: the user network holds the default route, the cluster network is a second NIC;
// the CNI bridge appears once pods run.
const lab = testFacts({
  ipv4: ['10.0.2.15', '10.244.1.1', '192.168.77.11', '192.168.77.99'],
  interfaces: { ens3: ['10.0.2.15'], cni0: ['10.244.1.1'], ens4: ['192.168.77.11', '192.168.77.99'] },
  defaultRouteInterface: 'ens3',
});

describe('selectNodeIp', () => {
  it('defaults to the first address of the default route interface, wherever it sits in the list', () => {
    expect(selectNodeIp({}, lab)).toBe('10.0.2.15');
    expect(selectNodeIp({}, { ...lab, defaultRouteInterface: 'ens4' })).toBe('192.168.77.11');
  });

  it('without a default route (or when its interface has no IPv4), the first address; with none at all, loopback', () => {
    expect(selectNodeIp({}, { ...lab, defaultRouteInterface: undefined })).toBe('10.0.2.15');
    expect(selectNodeIp({}, { ...lab, defaultRouteInterface: 'wg0' })).toBe('10.0.2.15');
    expect(selectNodeIp({}, testFacts({ ipv4: [], interfaces: {}, defaultRouteInterface: undefined }))).toBe('127.0.0.1');
  });

  it('picks the first address inside the CIDR', () => {
    expect(selectNodeIp({ cidr: '192.168.77.0/24' }, lab)).toBe('192.168.77.11');
    expect(selectNodeIp({ cidr: '10.0.0.0/8' }, lab)).toBe('10.0.2.15');
    expect(selectNodeIp({ cidr: '192.168.77.99/32' }, lab)).toBe('192.168.77.99');
  });

  it('picks the first address of the interface, and inside the CIDR when both are set', () => {
    expect(selectNodeIp({ interface: 'ens4' }, lab)).toBe('192.168.77.11');
    expect(selectNodeIp({ interface: 'ens4', cidr: '192.168.77.96/28' }, lab)).toBe('192.168.77.99');
  });

  it('a CIDR matching nothing is an error naming the field and listing the host addresses', () => {
    let err: unknown;
    try {
      selectNodeIp({ cidr: '172.16.0.0/12' }, lab);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    const a = err as AgentError;
    expect(a.code).toBe('CONFIG_INVALID');
    expect(a.message).toBe(
      "spec.networking.nodeAddress.cidr: this host has no IPv4 address inside 172.16.0.0/12; its IPv4 addresses: ens3 10.0.2.15, cni0 10.244.1.1, ens4 192.168.77.11, ens4 192.168.77.99. Fix the field (or the host's network): every component advertises this address",
    );
    expect(a.details).toMatchObject({ field: 'spec.networking.nodeAddress.cidr', cidr: '172.16.0.0/12' });
  });

  it('a missing interface says so; interface plus CIDR names the whole field', () => {
    expect(() => selectNodeIp({ interface: 'eth1' }, lab)).toThrow(/^spec\.networking\.nodeAddress\.interface: .*on interface eth1 \(no such interface, or it has no IPv4 address yet\)/);
    expect(() => selectNodeIp({ interface: 'ens3', cidr: '192.168.77.0/24' }, lab)).toThrow(/^spec\.networking\.nodeAddress: .*inside 192\.168\.77\.0\/24 on interface ens3/);
  });
});

describe('parseDefaultRouteInterface', () => {
  const header = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
  it('finds the default route (destination and mask 0, up), lowest metric first', () => {
    const text = [
      header,
      'ens4\t004DA8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
      'ens4\t00000000\t014DA8C0\t0003\t0\t0\t200\t00000000\t0\t0\t0',
      'ens3\t00000000\t0202000A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
      'ens3\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0',
      '',
    ].join('\n');
    expect(parseDefaultRouteInterface(text)).toBe('ens3');
  });
  it('ignores routes that are down, and has none without a default route', () => {
    expect(parseDefaultRouteInterface([header, 'ens3\t00000000\t0202000A\t0002\t0\t0\t0\t00000000\t0\t0\t0'].join('\n'))).toBeUndefined();
    expect(parseDefaultRouteInterface(header + '\n')).toBeUndefined();
  });
});

describe('spec.networking schema', () => {
  const doc = (networking: Record<string, unknown>): unknown => ({
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'NodeConfig',
    metadata: { cluster: 'c', instanceGroup: 'nodes' },
    spec: { role: 'worker', apiServerEndpoint: 'https://10.0.0.10:6443', networking },
  });
  it('defaults: per-node pod subnets, /24 for IPv4 and /64 for IPv6, no node address choice', () => {
    const n = NodeConfig.parse(doc({})).spec.networking;
    expect(n.bridge).toEqual({ podSubnet: 'per-node', nodeRoutes: true });
    expect(n.nodeAddress).toEqual({});
    expect(nodeCIDRMaskSize(n)).toBe(24);
    expect(nodeCIDRMaskSize(NodeConfig.parse(doc({ podCIDR: 'fd00:10:244::/56' })).spec.networking)).toBe(64);
  });
  it('refuses a node CIDR that is not IPv4 and an interface name with a slash', () => {
    const r = NodeConfig.safeParse(doc({ nodeAddress: { cidr: 'fd00::/64', interface: 'eth/1' } }));
    expect(r.success).toBe(false);
    expect(r.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['spec.networking.nodeAddress.cidr', 'spec.networking.nodeAddress.interface']);
  });
  it('refuses a node mask that does not split podCIDR (only for per-node bridge subnets)', () => {
    const bad = NodeConfig.safeParse(doc({ podCIDR: '10.244.0.0/16', bridge: { nodeCIDRMaskSize: 16 } }));
    expect(bad.error?.issues[0]?.path.join('.')).toBe('spec.networking.bridge.nodeCIDRMaskSize');
    expect(bad.error?.issues[0]?.message).toMatch(/longer than podCIDR's \/16, at most \/32/);
    expect(NodeConfig.safeParse(doc({ podCIDR: '10.0.0.0/8', bridge: { nodeCIDRMaskSize: 25 } })).success).toBe(false);
    expect(NodeConfig.safeParse(doc({ podCIDR: '10.0.0.0/8', bridge: { nodeCIDRMaskSize: 24 } })).success).toBe(true);
    expect(NodeConfig.safeParse(doc({ podCIDR: '10.244.0.0/16', bridge: { podSubnet: 'cluster', nodeCIDRMaskSize: 16 } })).success).toBe(true);
    expect(NodeConfig.safeParse(doc({ podCIDR: 'fd00::/56', cni: 'external' })).success).toBe(true);
  });
});
