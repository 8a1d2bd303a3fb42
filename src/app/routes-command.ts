// nodeup routes: the pod-routes sync loop that nodeup-routes.service runs (component.ts says why).
import type { Command } from './cli.ts';
import { AgentError } from '../engine/errors.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { cidrProblem } from '../engine/net/cidr.ts';
import { runRouteSync } from '../pod-routes/sync.ts';

export const routesCommand: Command = {
  name: 'routes',
  summary: "keep routes to the other nodes' pod subnets in step with the Node objects (bridge CNI)",
  usage: 'nodeup routes --node NAME [--kubeconfig FILE] [--pod-cidr CIDR[,CIDR]] [--interval SECONDS] [--once]',
  options: {
    kubeconfig: { type: 'string', default: '/etc/kubernetes/kubelet.conf' },
    node: { type: 'string' },
    interval: { type: 'string', default: '10' },
    /** The cluster's pod CIDRs: masquerade traffic from them to anything outside (src/pod-routes/masquerade.ts). */
    'pod-cidr': { type: 'string' },
    once: { type: 'boolean' },
  },
  async run(ctx) {
    const node = ctx.values.node;
    if (typeof node !== 'string' || node === '') throw new AgentError('CONFIG_INVALID', '--node: expected this node\'s name (the Node object it registered as)', { details: { field: '--node' } });
    const interval = Number(ctx.values.interval);
    if (!Number.isInteger(interval) || interval < 1 || interval > 3600) {
      throw new AgentError('CONFIG_INVALID', `--interval: expected whole seconds from 1 to 3600, got ${String(ctx.values.interval)}`, { details: { field: '--interval' } });
    }
    const podCIDRs = typeof ctx.values['pod-cidr'] === 'string' ? ctx.values['pod-cidr'].split(',').map((c) => c.trim()).filter((c) => c !== '') : [];
    for (const c of podCIDRs) {
      const problem = cidrProblem(c);
      if (problem) throw new AgentError('CONFIG_INVALID', `--pod-cidr: "${c}": ${problem} (expected CIDRs separated by commas, e.g. 10.244.0.0/16)`, { details: { field: '--pod-cidr' } });
    }
    const host = new NodeHost({ root: String(ctx.values.root), log: ctx.log });
    const log = ctx.log.child({ component: 'pod-routes' });
    log.info({ node, intervalSeconds: interval, masquerade: podCIDRs.length ? podCIDRs : undefined }, 'pod routes sync started');
    const ok = await runRouteSync(host, log, {
      kubeconfigPath: String(ctx.values.kubeconfig),
      nodeName: node,
      intervalMs: interval * 1000,
      podCIDRs,
      ...(ctx.values.once ? { rounds: 1 } : {}),
    });
    // The loop only ends with --once: its one round decides the exit status.
    return ok ? 0 : 1;
  },
};
