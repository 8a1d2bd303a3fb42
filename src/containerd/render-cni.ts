// Pure renderers for the node-local CNI config (bridge + host-local + portmap, for single-node and
// test clusters; `networking.cni: external` leaves CNI config to the cluster's add-on) and for
// /etc/crictl.yaml.
import { managedHeader } from '../agent/tasks/file.ts';

export interface BridgeCniInput {
  /** The pod CIDR host-local hands addresses from. */
  readonly podCIDR: string;
  readonly bridge: string;
  readonly networkName: string;
}

export function renderBridgeConflist(i: BridgeCniInput): string {
  const v6 = i.podCIDR.includes(':');
  const conf = {
    cniVersion: '1.0.0',
    name: i.networkName,
    plugins: [
      {
        type: 'bridge',
        bridge: i.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: i.podCIDR }]],
          routes: [{ dst: v6 ? '::/0' : '0.0.0.0/0' }],
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  return JSON.stringify(conf, null, 2) + '\n';
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
