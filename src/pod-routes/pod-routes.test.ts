import { afterEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../../tests/support/test-host.ts';
import type { HttpRequest } from '../engine/host/host.ts';
import { silentLogger } from '../engine/log.ts';
import { Graph } from '../engine/graph.ts';
import { testModel } from '../../tests/support/kubelet-model.ts';
import { renderKubeconfig } from '../engine/pki/kubeconfig.ts';
import { podRoutesComponent, renderPodRoutesUnit } from './component.ts';
import { desiredRoutes, nodesFromList, parseIpRoutes, routeActions, type NodeRouteInfo } from './routes.ts';
import { runRouteSync, syncRoutesOnce } from './sync.ts';
import { ensureMasquerade, masqueradeFamilies, masqueradeRestore, masqueradeRules } from './masquerade.ts';

const node = (name: string, podCIDRs: string[], ips: string[]): NodeRouteInfo => ({ name, podCIDRs, internalIPs: ips });

describe('desiredRoutes', () => {
  it('routes every other node subnet via its InternalIP of the same family, never its own', () => {
    const nodes = [
      node('cp-1', ['10.244.0.0/24'], ['192.168.77.11']),
      node('node-1', ['10.244.1.0/24', 'fd00:10:244:1::/64'], ['192.168.77.12', 'fd00::12']),
      node('node-2', ['10.244.2.0/24'], ['192.168.77.13']),
    ];
    expect(desiredRoutes(nodes, 'node-1')).toEqual([
      { dst: '10.244.0.0/24', via: '192.168.77.11', node: 'cp-1' },
      { dst: '10.244.2.0/24', via: '192.168.77.13', node: 'node-2' },
    ]);
    expect(desiredRoutes(nodes, 'cp-1')).toEqual([
      { dst: '10.244.1.0/24', via: '192.168.77.12', node: 'node-1' },
      { dst: '10.244.2.0/24', via: '192.168.77.13', node: 'node-2' },
      { dst: 'fd00:10:244:1::/64', via: 'fd00::12', node: 'node-1' },
    ]);
  });

  it('leaves out nodes with no subnet yet or no address of the family, and a subnet two nodes claim goes to one', () => {
    const nodes = [
      node('a', [], ['192.168.77.11']),
      node('b', ['10.244.1.0/24'], []),
      node('c', ['fd00:1::/64'], ['192.168.77.13']),
      node('e', ['10.244.3.0/24'], ['192.168.77.15']),
      node('d', ['10.244.3.0/24'], ['192.168.77.14']),
    ];
    expect(desiredRoutes(nodes, 'self')).toEqual([{ dst: '10.244.3.0/24', via: '192.168.77.14', node: 'd' }]);
  });
});

describe('nodesFromList and parseIpRoutes', () => {
  it('reads podCIDRs (or the older podCIDR) and InternalIPs', () => {
    const body = JSON.stringify({
      items: [
        { metadata: { name: 'a' }, spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.77.11' }, { type: 'Hostname', address: 'a' }] } },
        { metadata: { name: 'b' }, spec: { podCIDR: '10.244.1.0/24' }, status: { addresses: [{ type: 'ExternalIP', address: '1.2.3.4' }] } },
        { metadata: { name: 'c' }, spec: {}, status: {} },
      ],
    });
    expect(nodesFromList(body)).toEqual([node('a', ['10.244.0.0/24'], ['192.168.77.11']), node('b', ['10.244.1.0/24'], []), node('c', [], [])]);
  });

  it('reads `ip -j route` output, host routes with their prefix', () => {
    expect(parseIpRoutes('')).toEqual([]);
    expect(parseIpRoutes('[{"dst":"10.244.1.0/24","gateway":"192.168.77.12","dev":"eth1","protocol":"77","flags":[]},{"dst":"10.9.9.9","gateway":"192.168.77.12"}]\n')).toEqual([
      { dst: '10.244.1.0/24', via: '192.168.77.12' },
      { dst: '10.9.9.9/32', via: '192.168.77.12' },
    ]);
  });
});

describe('routeActions', () => {
  it('replaces missing and moved routes, removes routes of nodes that left, keeps the rest', () => {
    const installed = [
      { dst: '10.244.1.0/24', via: '192.168.77.12' },
      { dst: '10.244.2.0/24', via: '192.168.77.99' },
      { dst: '10.244.5.0/24', via: '192.168.77.15' },
    ];
    const desired = [
      { dst: '10.244.1.0/24', via: '192.168.77.12', node: 'n1' },
      { dst: '10.244.2.0/24', via: '192.168.77.13', node: 'n2' },
      { dst: '10.244.3.0/24', via: '192.168.77.14', node: 'n3' },
    ];
    expect(routeActions(installed, desired)).toEqual({
      replace: [desired[1], desired[2]],
      remove: [{ dst: '10.244.5.0/24', via: '192.168.77.15' }],
    });
    expect(routeActions(installed.slice(0, 1), desired.slice(0, 1))).toEqual({ replace: [], remove: [] });
  });
});

describe('the sync against a scripted host', () => {
  let host: TestHost | undefined;
  afterEach(async () => host?.dispose());

  const nodeList = (items: NodeRouteInfo[]): string =>
    JSON.stringify({
      items: items.map((n) => ({ metadata: { name: n.name }, spec: { podCIDRs: n.podCIDRs }, status: { addresses: n.internalIPs.map((a) => ({ type: 'InternalIP', address: a })) } })),
    });

  it('lists the nodes as the node itself, then adds and removes only its own routes', async () => {
    const seen: HttpRequest[] = [];
    host = await createTestHost({
      http: (req) => {
        seen.push(req);
        return {
          status: 200,
          headers: {},
          body: Buffer.from(nodeList([node('cp-1', ['10.244.0.0/24'], ['192.168.77.11']), node('node-1', ['10.244.1.0/24'], ['192.168.77.12']), node('node-2', ['10.244.2.0/24'], ['192.168.77.13'])])),
        };
      },
      commands: [
        { match: 'ip -4 -j route show proto 77', stdout: '[{"dst":"10.244.0.0/24","gateway":"192.168.77.11"},{"dst":"10.244.9.0/24","gateway":"192.168.77.19"}]' },
        { match: 'ip -6 -j route show proto 77', stdout: '' },
        { match: /^ip -4 route (replace|del) /, stdout: '' },
      ],
    });
    await host.fs.mkdirp('/etc/kubernetes', 0o755);
    await host.fs.writeAtomic(
      '/etc/kubernetes/kubelet.conf',
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://192.168.77.11:6443/", certificate-authority: /etc/kubernetes/pki/ca.crt}}]\nusers: [{name: u, user: {client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem, client-key: /var/lib/kubelet/pki/kubelet-client-current.pem}}]\n`,
      { mode: 0o600 },
    );
    await host.fs.mkdirp('/var/lib/kubelet/pki', 0o755);
    await host.fs.writeAtomic('/var/lib/kubelet/pki/kubelet-client-current.pem', 'PAIR-PEM', { mode: 0o600 });
    await host.fs.mkdirp('/etc/kubernetes/pki', 0o755);
    await host.fs.writeAtomic('/etc/kubernetes/pki/ca.crt', 'CA-PEM', { mode: 0o644 });

    const r = await syncRoutesOnce(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'node-1' });
    expect(r).toEqual({ nodes: 3, routes: 2, added: 1, removed: 1, failed: 0, masquerade: 0 });
    expect(seen[0]?.url).toBe('https://192.168.77.11:6443/api/v1/nodes?resourceVersion=0');
    expect(seen[0]?.tls).toEqual({ ca: 'CA-PEM', cert: 'PAIR-PEM', key: 'PAIR-PEM' });
    expect(host.commandLog()).toEqual([
      'ip -4 -j route show proto 77',
      'ip -6 -j route show proto 77',
      'ip -4 route replace 10.244.2.0/24 via 192.168.77.13 proto 77',
      'ip -4 route del 10.244.9.0/24 proto 77',
    ]);
  });

  it('keeps going when the API server refuses, and when one route cannot be set', async () => {
    let calls = 0;
    host = await createTestHost({
      http: () => {
        calls += 1;
        if (calls === 1) return { status: 403, headers: {}, body: Buffer.from('{"message":"forbidden"}') };
        return { status: 200, headers: {}, body: Buffer.from(nodeList([node('a', ['10.244.0.0/24'], ['192.168.77.11']), node('far', ['10.244.7.0/24'], ['10.9.0.7'])])) };
      },
      commands: [
        { match: 'ip -4 -j route show proto 77', stdout: '' },
        { match: 'ip -6 -j route show proto 77', stdout: '' },
        { match: 'ip -4 route replace 10.244.7.0/24 via 10.9.0.7 proto 77', exitCode: 2, stderr: 'Error: Nexthop has invalid gateway.' },
      ],
    });
    const kc = renderKubeconfig({ clusterName: 'c', server: 'https://127.0.0.1:6443', caPem: 'CA', user: 'u', certPem: 'CERT', keyPem: 'KEY' });
    await host.fs.mkdirp('/etc/kubernetes', 0o755);
    await host.fs.writeAtomic('/etc/kubernetes/kubelet.conf', kc, { mode: 0o600 });
    await runRouteSync(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a', intervalMs: 10_000, rounds: 2 });
    expect(calls).toBe(2);
    expect(host.virtualTime).toBe(10_000);
    expect(host.commandLog()).toContain('ip -4 route replace 10.244.7.0/24 via 10.9.0.7 proto 77');
    const again = await syncRoutesOnce(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a' });
    expect(again.failed).toBe(1);
  });

  it('says the kubeconfig does not exist yet before kubelet joined', async () => {
    host = await createTestHost({});
    await expect(syncRoutesOnce(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a' })).rejects.toThrow(/does not exist yet/);
  });
});

describe('masquerade rules', () => {
  let host: TestHost | undefined;
  afterEach(async () => {
    await host?.dispose();
    host = undefined;
  });

  const chainV4 = [
    '-N NODEUP-POD-MASQ',
    '-A NODEUP-POD-MASQ -d 10.244.0.0/16 -j RETURN',
    '-A NODEUP-POD-MASQ -d 224.0.0.0/4 -j RETURN',
    '-A NODEUP-POD-MASQ -m addrtype --dst-type LOCAL -j RETURN',
    '-A NODEUP-POD-MASQ -j MASQUERADE',
  ];
  const jump = "-s 10.244.0.0/16 -m comment --comment nodeup: masquerade pod traffic leaving the cluster's pod network -j NODEUP-POD-MASQ";

  it('keep pod-to-pod, multicast and node-local traffic as it is and masquerade the rest, per family', () => {
    const [v4, v6] = masqueradeFamilies(['10.244.0.0/16', 'fd00:10:244::/56']);
    expect(v4?.tool).toBe('iptables');
    expect(v6?.tool).toBe('ip6tables');
    expect(masqueradeRules(v4!)).toEqual(chainV4);
    expect(masqueradeRules(v6!)).toContain('-A NODEUP-POD-MASQ -d ff00::/8 -j RETURN');
    expect(masqueradeRestore(v4!)).toBe(['*nat', ':NODEUP-POD-MASQ - [0:0]', ...chainV4.slice(1), 'COMMIT', ''].join('\n'));
  });

  it('write the chain and the jump when missing, and nothing when they are in place', async () => {
    host = await createTestHost({
      commands: [
        { match: 'iptables -w 5 -t nat -S NODEUP-POD-MASQ', exitCode: 1, stderr: 'iptables: No chain/target/match by that name.' },
        { match: 'iptables-restore -w 5 --noflush', stdout: '' },
        { match: `iptables -w 5 -t nat -C POSTROUTING ${jump}`, exitCode: 1, stderr: 'iptables: Bad rule (does a matching rule exist in that chain?).' },
        { match: `iptables -w 5 -t nat -A POSTROUTING ${jump}`, stdout: '' },
      ],
    });
    expect(await ensureMasquerade(host, silentLogger, ['10.244.0.0/16'])).toEqual(['iptables chain NODEUP-POD-MASQ', 'iptables POSTROUTING jump']);
    expect(host.commandLog()).toEqual([
      'iptables -w 5 -t nat -S NODEUP-POD-MASQ',
      'iptables-restore -w 5 --noflush',
      `iptables -w 5 -t nat -C POSTROUTING ${jump}`,
      `iptables -w 5 -t nat -A POSTROUTING ${jump}`,
    ]);
    await host.dispose();

    // iptables prints the chain back with its own spacing: still the same rules.
    host = await createTestHost({
      commands: [
        { match: 'iptables -w 5 -t nat -S NODEUP-POD-MASQ', stdout: chainV4.map((l) => l.replace(/ -j /, '  -j ')).join('\n') + '\n' },
        { match: `iptables -w 5 -t nat -C POSTROUTING ${jump}`, stdout: '' },
      ],
    });
    expect(await ensureMasquerade(host, silentLogger, ['10.244.0.0/16'])).toEqual([]);
    expect(host.commandLog()).toHaveLength(2);
  });

  it('rewrite a chain somebody changed, and report a failing tool without stopping the routes', async () => {
    host = await createTestHost({
      commands: [
        { match: 'iptables -w 5 -t nat -S NODEUP-POD-MASQ', stdout: [...chainV4.slice(0, 4), '-A NODEUP-POD-MASQ -j ACCEPT'].join('\n') },
        { match: 'iptables-restore -w 5 --noflush', exitCode: 4, stderr: 'iptables-restore: unable to initialize table nat' },
        { match: 'ip -4 -j route show proto 77', stdout: '' },
        { match: 'ip -6 -j route show proto 77', stdout: '' },
      ],
      http: () => ({ status: 200, headers: {}, body: Buffer.from('{"items":[]}') }),
    });
    const kc = renderKubeconfig({ clusterName: 'c', server: 'https://127.0.0.1:6443', caPem: 'CA', user: 'u', certPem: 'CERT', keyPem: 'KEY' });
    await host.fs.mkdirp('/etc/kubernetes', 0o755);
    await host.fs.writeAtomic('/etc/kubernetes/kubelet.conf', kc, { mode: 0o600 });
    const r = await syncRoutesOnce(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a', podCIDRs: ['10.244.0.0/16'] });
    expect(r.masqueradeError).toMatch(/unable to initialize table nat/);
    expect(r.masquerade).toBe(0);
    expect(host.commandLog().slice(0, 2)).toEqual(['iptables -w 5 -t nat -S NODEUP-POD-MASQ', 'iptables-restore -w 5 --noflush']);
    expect(host.commandLog()).toContain('ip -4 -j route show proto 77');
    expect(await runRouteSync(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a', podCIDRs: ['10.244.0.0/16'], intervalMs: 1000, rounds: 1 })).toBe(false);
  });

  it('report a failing tool even when the API server cannot be asked in the same round', async () => {
    host = await createTestHost({
      commands: [
        { match: 'iptables -w 5 -t nat -S NODEUP-POD-MASQ', exitCode: 1, stderr: 'iptables: No chain/target/match by that name.' },
        { match: 'iptables-restore -w 5 --noflush', exitCode: 4, stderr: 'iptables-restore: unable to initialize table nat' },
      ],
    });
    // No kubeconfig yet: the round ends before any route, and still names the masquerade problem.
    await expect(syncRoutesOnce(host, silentLogger, { kubeconfigPath: '/etc/kubernetes/kubelet.conf', nodeName: 'a', podCIDRs: ['10.244.0.0/16'] })).rejects.toThrow(
      /does not exist yet.*and the pod masquerade rules were not set: .*unable to initialize table nat/,
    );
  });
});

describe('the component', () => {
  it('installs nodeup-routes.service on live nodes with the bridge and per-node subnets only', () => {
    const build = (o: Parameters<typeof testModel>[0]): string[] => {
      const m = testModel(o);
      if (!podRoutesComponent.enabled(m)) return [];
      const g = new Graph();
      podRoutesComponent.build(m, g);
      return [...g.finish().tasks.keys()];
    };
    expect(build({ nodeName: 'node-1' })).toEqual(['unit:nodeup-routes.service']);
    expect(build({ bake: true })).toEqual([]);
    expect(build({ spec: { networking: { cni: 'external' } } })).toEqual([]);
    expect(build({ spec: { networking: { bridge: { podSubnet: 'cluster' } } } })).toEqual([]);
    expect(build({ spec: { networking: { bridge: { nodeRoutes: false } } } })).toEqual([]);
  });

  it('renders the unit', async () => {
    await expect(renderPodRoutesUnit({ binary: '/usr/local/bin/nodeup', kubeconfig: '/etc/kubernetes/kubelet.conf', nodeName: 'node-1', intervalSeconds: 10, podCIDR: '10.244.0.0/16' })).toMatchFileSnapshot(
      'testdata/nodeup-routes.service',
    );
  });
});
