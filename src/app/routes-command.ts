// nodeup routes: the pod-routes sync loop that nodeup-routes.service runs (component.ts says why).
import type { Command } from './cli.ts';
import { AgentError } from '../engine/errors.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { runRouteSync } from '../pod-routes/sync.ts';

export const routesCommand: Command = {
  name: 'routes',
  summary: "keep routes to the other nodes' pod subnets in step with the Node objects (bridge CNI)",
  usage: 'nodeup routes --node NAME [--kubeconfig FILE] [--interval SECONDS] [--once]',
  options: {
    kubeconfig: { type: 'string', default: '/etc/kubernetes/kubelet.conf' },
    node: { type: 'string' },
    interval: { type: 'string', default: '10' },
    once: { type: 'boolean' },
  },
  async run(ctx) {
    const node = ctx.values.node;
    if (typeof node !== 'string' || node === '') throw new AgentError('CONFIG_INVALID', '--node: expected this node\'s name (the Node object it registered as)', { details: { field: '--node' } });
    const interval = Number(ctx.values.interval);
    if (!Number.isInteger(interval) || interval < 1 || interval > 3600) {
      throw new AgentError('CONFIG_INVALID', `--interval: expected whole seconds from 1 to 3600, got ${String(ctx.values.interval)}`, { details: { field: '--interval' } });
    }
    const host = new NodeHost({ root: String(ctx.values.root), log: ctx.log });
    const log = ctx.log.child({ component: 'pod-routes' });
    log.info({ node, intervalSeconds: interval }, 'pod routes sync started');
    const ok = await runRouteSync(host, log, {
      kubeconfigPath: String(ctx.values.kubeconfig),
      nodeName: node,
      intervalMs: interval * 1000,
      ...(ctx.values.once ? { rounds: 1 } : {}),
    });
    // The loop only ends with --once: its one round decides the exit status.
    return ok ? 0 : 1;
  },
};
