// `nodeup ready [--timeout SECONDS]`: waits until this node's kubelet answers its health endpoint
// and its Node is Ready, asking the API server with the node's own kubelet credentials; exit 0, or
// 1 at the timeout with the last thing seen. A rollout's gate after each apply (`nodeup ssh apply`).
import type { Command } from './cli.ts';
import { AgentError } from '../engine/errors.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { kubeletKubeconfigPath } from '../model/paths/kubelet.ts';
import { drainTimeoutMs } from './disruption.ts';
import { kubeletHealthy } from './drain-guard.ts';
import { kubeconfigClient, NodeApi } from './drain.ts';
import { loadBoot, loadModel } from './run.ts';

export const readyCommand: Command = {
  name: 'ready',
  summary: "wait until this node's kubelet is healthy and its Node Ready (a rollout's gate); exit 1 at the timeout",
  usage: 'nodeup ready [--config FILE] [--timeout SECONDS (default 300)]',
  options: { timeout: { type: 'string' } },
  async run(ctx) {
    const timeoutMs = drainTimeoutMs(ctx.values.timeout, 300, '--timeout');
    const host = new NodeHost({ root: String(ctx.values.root), log: ctx.log });
    const boot = await loadBoot(String(ctx.values.config));
    const { model } = await loadModel({ mode: 'plan', host, log: ctx.log, bootConfig: boot }, boot);
    const api = await kubeconfigClient(host, kubeletKubeconfigPath);
    if (!api) throw new AgentError('USAGE', `${kubeletKubeconfigPath} does not exist: this node has not joined (run nodeup apply)`, { details: { path: kubeletKubeconfigPath } });
    const t0 = host.now();
    await new NodeApi(host, api, model.nodeName).waitReady(t0 + timeoutMs, () => kubeletHealthy(host));
    ctx.out(`${model.nodeName}: kubelet healthy, Node Ready (${Math.round((host.now() - t0) / 1000)} s)\n`);
    return 0;
  },
};
