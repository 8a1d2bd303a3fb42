// The pod-routes sync loop (`nodeup routes`, run by nodeup-routes.service): every interval it
// lists the Nodes (served from the API server's watch cache: resourceVersion=0), works out the
// routes to the other nodes' pod subnets (routes.ts) and changes only those marked with nodeup's
// route protocol. A node that joins gets its route within one interval; a node that is deleted
// loses it. It authenticates as the node itself (kubelet's kubeconfig, re-read every round so a
// rotated client certificate is picked up) and needs `list nodes` (the add-ons bind
// nodeup:node-routes to system:nodes).
import { AgentError, errorMessage } from '../engine/errors.ts';
import type { Host } from '../engine/host/host.ts';
import type { Logger } from '../engine/log.ts';
import { parseKubeconfig } from '../engine/pki/kubeconfig.ts';
import { ensureMasquerade } from './masquerade.ts';
import { desiredRoutes, ipFamilyFlag, nodesFromList, parseIpRoutes, routeActions, routeProtocol, type InstalledRoute, type NodeRouteInfo, type PodRoute } from './routes.ts';

export interface RouteSyncOptions {
  readonly kubeconfigPath: string;
  readonly nodeName: string;
  /** The cluster's pod CIDRs: keep the masquerade rules for traffic leaving them (masquerade.ts); none: no rules. */
  readonly podCIDRs?: readonly string[];
  /** Between two rounds. */
  readonly intervalMs: number;
  /** Stop after this many rounds (tests); default: run until the process ends. */
  readonly rounds?: number;
}

export interface RoundResult {
  readonly nodes: number;
  readonly routes: number;
  readonly added: number;
  readonly removed: number;
  readonly failed: number;
  /** Masquerade rules rewritten this round (0 when they were in place or are not kept). */
  readonly masquerade: number;
  /** Why the masquerade rules could not be set this round (the routes are synced regardless). */
  readonly masqueradeError?: string;
}

interface ApiAccess {
  readonly server: string;
  readonly tls: { readonly ca: string; readonly cert: string; readonly key: string };
}

async function apiAccess(host: Host, kubeconfigPath: string): Promise<ApiAccess> {
  const raw = await host.fs.read(kubeconfigPath);
  if (!raw) throw new AgentError('NOT_READY', `${kubeconfigPath} does not exist yet (kubelet writes it when it joins)`, { details: { file: kubeconfigPath } });
  const k = parseKubeconfig(raw.toString('utf8'));
  const pem = async (data: string | undefined, file: string | undefined, what: string): Promise<string> => {
    if (data !== undefined) return data;
    const f = file === undefined ? undefined : await host.fs.read(file);
    if (f) return f.toString('utf8');
    throw new AgentError('KUBE_API', `${kubeconfigPath}: no ${what}${file ? ` (${file} is missing)` : ''}`, { details: { file: kubeconfigPath } });
  };
  if (!k.server) throw new AgentError('KUBE_API', `${kubeconfigPath}: no cluster server`, { details: { file: kubeconfigPath } });
  return {
    server: k.server.replace(/\/+$/, ''),
    tls: {
      ca: await pem(k.caPem, k.caFile, 'certificate authority'),
      cert: await pem(k.certPem, k.certFile, 'client certificate'),
      key: await pem(k.keyPem, k.keyFile, 'client key'),
    },
  };
}

/** nodeup's routes of both families in the kernel's main table. */
async function installedRoutes(host: Host): Promise<InstalledRoute[]> {
  const out: InstalledRoute[] = [];
  for (const family of ['-4', '-6'] as const) {
    const r = await host.run('ip', [family, '-j', 'route', 'show', 'proto', String(routeProtocol)]);
    out.push(...parseIpRoutes(r.stdout));
  }
  return out;
}

/** One round: list, compare, change. Throws when the API server cannot be asked. */
/** The Node objects, listed through kubelet's kubeconfig (from the API server's cache). */
async function listNodes(host: Host, kubeconfigPath: string): Promise<NodeRouteInfo[]> {
  const api = await apiAccess(host, kubeconfigPath);
  const res = await host.http({ url: `${api.server}/api/v1/nodes?resourceVersion=0`, headers: { accept: 'application/json' }, tls: api.tls, timeoutMs: 15_000 });
  if (res.status !== 200) {
    throw new AgentError('KUBE_API', `listing nodes failed: HTTP ${res.status}`, {
      details: { status: res.status, body: res.body.toString('utf8').slice(0, 300), hint: res.status === 403 ? 'the node may not list nodes: is the nodeup:node-routes binding applied?' : undefined },
    });
  }
  return nodesFromList(res.body.toString('utf8'));
}

export async function syncRoutesOnce(host: Host, log: Logger, o: Pick<RouteSyncOptions, 'kubeconfigPath' | 'nodeName' | 'podCIDRs'>): Promise<RoundResult> {
  // First, and whatever the API server says: pods need the way out before any route exists.
  let masquerade = 0;
  let masqueradeError: string | undefined;
  if (o.podCIDRs?.length) {
    try {
      masquerade = (await ensureMasquerade(host, log, o.podCIDRs)).length;
    } catch (err: unknown) {
      const tail = err instanceof AgentError ? err.details?.['stderrTail'] : undefined;
      masqueradeError = `${errorMessage(err)}${typeof tail === 'string' && tail.trim() ? `: ${tail.trim()}` : ''}`;
    }
  }
  let nodes: NodeRouteInfo[];
  try {
    nodes = await listNodes(host, o.kubeconfigPath);
  } catch (err: unknown) {
    // The round ends here: say the masquerade problem too, or it would go unreported.
    if (masqueradeError === undefined) throw err;
    throw new AgentError('KUBE_API', `${errorMessage(err)}; and the pod masquerade rules were not set: ${masqueradeError}`, { cause: err });
  }
  const want = desiredRoutes(nodes, o.nodeName);
  const have = await installedRoutes(host);
  const actions = routeActions(have, want);
  let failed = 0;
  for (const r of actions.replace) {
    const ok = await change(host, log, ['ip', ipFamilyFlag(r.dst), 'route', 'replace', r.dst, 'via', r.via, 'proto', String(routeProtocol)], r);
    if (!ok) failed += 1;
  }
  for (const r of actions.remove) {
    const ok = await change(host, log, ['ip', ipFamilyFlag(r.dst), 'route', 'del', r.dst, 'proto', String(routeProtocol)], { dst: r.dst, via: r.via ?? '', node: '' });
    if (!ok) failed += 1;
  }
  return { nodes: nodes.length, routes: want.length, added: actions.replace.length, removed: actions.remove.length, failed, masquerade, ...(masqueradeError ? { masqueradeError } : {}) };
}

async function change(host: Host, log: Logger, argv: readonly string[], r: PodRoute): Promise<boolean> {
  const [file = 'ip', ...args] = argv;
  const verb = args[2] === 'del' ? 'removed' : 'set';
  try {
    await host.run(file, args);
    log.info({ dst: r.dst, via: r.via, node: r.node || undefined }, verb === 'set' ? 'pod route set' : 'pod route removed');
    return true;
  } catch (err: unknown) {
    // e.g. "Nexthop has invalid gateway": the node is not on this node's link (docs/networking.md).
    log.warn({ dst: r.dst, via: r.via, node: r.node || undefined, err: errorMessage(err) }, 'pod route change failed');
    return false;
  }
}

/** Round after round until `rounds` (or forever); a failed round is logged and retried next interval. */
export async function runRouteSync(host: Host, log: Logger, o: RouteSyncOptions): Promise<boolean> {
  let lastError = '';
  let lastMasqueradeError = '';
  for (let round = 1; o.rounds === undefined || round <= o.rounds; round++) {
    try {
      const r = await syncRoutesOnce(host, log, o);
      const { masqueradeError = '', ...figures } = r;
      if (r.added || r.removed || r.failed || r.masquerade || lastError) log.info(figures, 'pod routes synced');
      // One line per distinct problem, not one per round.
      if (masqueradeError !== lastMasqueradeError && masqueradeError) log.warn({ err: masqueradeError }, 'pod masquerade rules not set; retrying');
      lastMasqueradeError = masqueradeError;
      lastError = '';
    } catch (err: unknown) {
      const msg = errorMessage(err);
      if (msg !== lastError) log.warn({ err: msg }, 'pod routes not synced; retrying');
      lastError = msg;
    }
    if (o.rounds === undefined || round < o.rounds) await host.sleep(o.intervalMs);
  }
  return lastError === '' && lastMasqueradeError === '';
}
