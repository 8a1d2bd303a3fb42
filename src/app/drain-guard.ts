// Disruption-aware apply (issue 19, item 2): around a run that would restart a running kubelet
// or containerd on a registered Node, cordon and drain first, and after the walk wait until the
// Node is Ready again (and, when the kubelet restarted, the new kubelet answers its health
// endpoint on 127.0.0.1:10248: the Ready condition alone can lag a dead kubelet by 40 s), then
// uncordon.
//
// - Not a live host, no kubelet kubeconfig yet (first boot), or no Node of this name: no drain.
// - The API server does not answer: the run goes on without a drain and says so (log, receipt).
//   A node must still converge when its control plane is down: on a control-plane node the API
//   server is a static pod that this very kubelet runs.
// - The drain times out (a PodDisruptionBudget allows no disruption): the node is uncordoned if
//   this run cordoned it, nothing is applied, and the run fails naming the pods.
// - The walk fails, or the Node is not Ready in time: the node stays cordoned (the receipt says
//   so); the next run that converges uncordons it (the cordon annotation marks it as nodeup's).
// - An operator's cordon (no annotation) is kept: nodeup drains but never uncordons it.
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { TaskGraph } from '../engine/graph.ts';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import type { TaskContext } from '../engine/task.ts';
import { kubeletKubeconfigPath, kubeletUnitKey } from '../model/paths/kubelet.ts';
import { describeRestarts, predictRestarts, type Restart } from './disruption.ts';
import { cordonAnnotation, kubeconfigClient, NodeApi } from './drain.ts';
import type { Disruption } from './receipt.ts';

/** Defaults of apply's --drain-timeout, and of the wait for Ready after the change. */
export const defaultDrainTimeoutS = 600;
export const readyTimeoutMs = 5 * 60_000;

export interface DrainGuardOptions {
  readonly host: Host;
  readonly log: Logger;
  readonly graph: TaskGraph;
  readonly ctx: TaskContext;
  readonly nodeName: string;
  /** The run converges the host it runs on (root /): only then do units run and a Node exist. */
  readonly live: boolean;
  /** The kubelet's kubeconfig (default kubeletKubeconfigPath): the node's own credentials. */
  readonly kubeconfigPath?: string;
  /** The kubelet's health endpoint (default kubeletHealthz). */
  readonly kubeletHealthzUrl?: string;
  /** false: --no-drain (restart without draining; a leftover cordon of nodeup's is still lifted). */
  readonly drain: boolean;
  readonly drainTimeoutMs: number;
  readonly readyTimeoutMs?: number;
  readonly pollMs?: number;
}

export interface DrainGuard {
  readonly node?: NodeApi;
  readonly restarts: readonly Restart[];
  /** This run (or an earlier one that died) cordoned the node: uncordon when the run converges. */
  readonly ours: boolean;
  readonly record: Omit<Disruption, 'uncordoned'>;
}

/** Before the walk: decides, cordons and drains. undefined: nothing to guard. Throws when the drain fails (nothing applied). */
export async function beforeWalk(o: DrainGuardOptions): Promise<DrainGuard | undefined> {
  if (!o.live) return undefined;
  const restarts = await predictRestarts(o.graph, o.host, o.ctx);
  const names = restarts.map((r) => describeRestarts([r]));
  let node: NodeApi;
  let seen: Awaited<ReturnType<NodeApi['node']>>;
  try {
    const api = await kubeconfigClient(o.host, o.kubeconfigPath ?? kubeletKubeconfigPath);
    if (!api) return undefined;
    node = new NodeApi(o.host, api, o.nodeName);
    seen = await node.node();
  } catch (err: unknown) {
    // With nothing to restart, only the leftover-cordon check is lost. With a restart ahead: local
    // credentials that cannot be read (a missing certificate file) mean this kubelet cannot talk to
    // the API server either, so the run goes on without a drain, as when the server does not
    // answer; credentials the server refuses (401/403) are a misconfiguration: apply refuses
    // rather than restart under pods it cannot drain.
    if (restarts.length === 0) {
      o.log.warn({ err }, 'cannot read this node\'s Node object: a cordon a failed nodeup run left is not checked');
      return undefined;
    }
    if (err instanceof AgentError && err.code === 'KUBE_API') {
      o.log.warn({ err, restarts: names }, 'cannot drain before restarting: the kubelet\'s credentials cannot be read; applying without a drain');
      return { restarts, ours: false, record: { restarts: names, drain: 'skipped', skippedBecause: `the kubelet's credentials cannot be read (${errorMessage(err)})` } };
    }
    throw err;
  }
  if (seen === null) return undefined;
  if ('unreachable' in seen) {
    if (restarts.length === 0) return undefined;
    const why = `the API server does not answer (${seen.unreachable})`;
    o.log.warn({ restarts: names, reason: seen.unreachable }, 'cannot drain before restarting: the API server does not answer; applying without a drain');
    return { restarts, ours: false, record: { restarts: names, drain: 'skipped', skippedBecause: why } };
  }
  const leftover = seen.metadata.annotations?.[cordonAnnotation] !== undefined;
  if (restarts.length === 0) {
    return leftover ? { node, restarts, ours: true, record: { restarts: [], drain: 'none' } } : undefined;
  }
  if (!o.drain) {
    o.log.warn({ restarts: names }, 'restarting without a drain (--no-drain)');
    return { node, restarts, ours: leftover, record: { restarts: names, drain: 'skipped', skippedBecause: '--no-drain' } };
  }
  const operatorCordon = seen.spec?.unschedulable === true && !leftover;
  o.log.info({ node: o.nodeName, restarts: names, operatorCordon }, 'this run restarts a running kubelet or containerd: cordoning and draining the node first');
  if (!operatorCordon && !leftover) await node.cordon(new Date(o.host.now()).toISOString());
  try {
    const res = await node.drain({ log: o.log, deadline: o.host.now() + o.drainTimeoutMs, ...(o.pollMs ? { pollMs: o.pollMs } : {}) });
    return { node, restarts, ours: !operatorCordon, record: { restarts: names, drain: 'drained', evicted: res.evicted } };
  } catch (err: unknown) {
    // Nothing was applied: leave the node as this run found it.
    if (!operatorCordon && !leftover) {
      await node.uncordon().catch((e: unknown) => o.log.error({ err: e }, 'cannot uncordon after the failed drain'));
    }
    throw err;
  }
}

/** The kubelet's own health endpoint (KubeletConfiguration's defaults: 127.0.0.1, port 10248); undefined when it answers ok. */
export const kubeletHealthz = 'http://127.0.0.1:10248/healthz';

export async function kubeletHealthy(host: Host, url: string = kubeletHealthz): Promise<string | undefined> {
  try {
    const res = await host.http({ url, timeoutMs: 5000 });
    return res.status === 200 ? undefined : `kubelet ${url}: HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
  } catch (err: unknown) {
    return `kubelet ${url}: ${errorMessage(err)}`;
  }
}

/**
 * After the walk: when it converged, waits until the Node is Ready (and the restarted kubelet
 * healthy) and uncordons a node this run or an earlier one of nodeup's cordoned. Returns the
 * receipt's record; throws when the Node is not Ready in time (it then stays cordoned).
 */
export async function afterWalk(g: DrainGuard, converged: boolean, o: Pick<DrainGuardOptions, 'host' | 'log' | 'readyTimeoutMs' | 'pollMs' | 'kubeletHealthzUrl'>): Promise<Disruption> {
  const node = g.node;
  if (!node || !g.ours) return { ...g.record, uncordoned: false };
  if (!converged) {
    o.log.error({ node: node.name }, 'the run did not converge: the node stays cordoned until a run converges');
    return { ...g.record, uncordoned: false };
  }
  const kubeletRestarted = g.restarts.some((r) => r.unit === kubeletUnitKey);
  const local = kubeletRestarted ? () => kubeletHealthy(o.host, o.kubeletHealthzUrl ?? kubeletHealthz) : () => Promise.resolve(undefined);
  await node.waitReady(o.host.now() + (o.readyTimeoutMs ?? readyTimeoutMs), local, o.pollMs);
  await node.uncordon();
  o.log.info({ node: node.name }, 'node Ready after the change: uncordoned');
  return { ...g.record, uncordoned: true };
}
