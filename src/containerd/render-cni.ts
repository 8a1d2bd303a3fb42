// Pure renderers for the node-local CNI network (bridge + host-local + portmap; `networking.cni:
// external` leaves CNI config to the cluster's add-on): a template containerd fills with the node's
// pod subnet (default), or a static conflist over the whole pod CIDR (one node); and /etc/crictl.yaml.
import { managedHeader } from '../engine/tasks/file.ts';

export interface BridgeCniInput {
  /** The pod CIDR host-local hands addresses from. */
  readonly podCIDR: string;
  readonly bridge: string;
  readonly networkName: string;
}

function bridgeConf(i: { readonly bridge: string; readonly networkName: string; readonly ipMasq: boolean }, ranges: unknown, routes: unknown): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: i.networkName,
    plugins: [
      {
        type: 'bridge',
        bridge: i.bridge,
        isGateway: true,
        ipMasq: i.ipMasq,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges, routes },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** The static network: every address of `podCIDR` on this node's bridge (`bridge.podSubnet: cluster`). */
export function renderBridgeConflist(i: BridgeCniInput): string {
  const v6 = i.podCIDR.includes(':');
  return JSON.stringify(bridgeConf({ ...i, ipMasq: true }, [[{ subnet: i.podCIDR }]], [{ dst: v6 ? '::/0' : '0.0.0.0/0' }]), null, 2) + '\n';
}

export interface BridgeTemplateInput {
  readonly bridge: string;
  readonly networkName: string;
  /**
   * The bridge plugin's masquerade of everything leaving the node's subnet. Off when nodeup-routes
   * routes the subnets between nodes: it keeps its own rule then, which leaves pod-to-pod traffic
   * unNATed (src/pod-routes/masquerade.ts).
   */
  readonly ipMasq: boolean;
}

const rangesMark = '@@PodCIDRRanges@@';
const routesMark = '@@Routes@@';

/**
 * The same network as a Go text/template for containerd's CRI `cni.conf_template` (per-node pod
 * subnets): containerd executes it when kubelet sends the Node's spec.podCIDRs (CRI
 * UpdateRuntimeConfig), with .PodCIDRRanges (one per IP family) and .Routes (0.0.0.0/0, ::/0), and
 * writes the result to <conf_dir>/10-containerd-net.conflist.
 */
export function renderBridgeConflistTemplate(i: BridgeTemplateInput): string {
  const json = JSON.stringify(bridgeConf(i, rangesMark, routesMark), null, 2) + '\n';
  return json
    .replace(`"${rangesMark}"`, '[{{range $i, $r := .PodCIDRRanges}}{{if $i}}, {{end}}[{"subnet": "{{$r}}"}]{{end}}]')
    .replace(`"${routesMark}"`, '[{{range $i, $r := .Routes}}{{if $i}}, {{end}}{"dst": "{{$r}}"}{{end}}]');
}

export interface CrictlInput {
  /** e.g. unix:///run/containerd/containerd.sock */
  readonly endpoint: string;
  readonly timeoutSeconds: number;
}

export function renderCrictlYaml(i: CrictlInput): string {
  return [
    `# ${managedHeader}`,
    `runtime-endpoint: ${i.endpoint}`,
    `image-endpoint: ${i.endpoint}`,
    `timeout: ${i.timeoutSeconds}`,
    'debug: false',
    'pull-image-on-create: false',
    '',
  ].join('\n');
}
