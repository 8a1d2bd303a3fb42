// Pure renderers of kubelet's systemd unit and its flags file. The unit is the same on every node of
// a group (and in a baked image); what names this node lives in the flags file.
import { renderUnit } from '../engine/tasks/render-unit.ts';
import { managedHeader } from '../engine/tasks/file.ts';
import { compareText } from '../engine/text-order.ts';

export interface KubeletUnitInput {
  readonly binary: string;
  readonly configPath: string;
  readonly flagsPath: string;
}

export function renderKubeletUnit(i: KubeletUnitInput): string {
  return renderUnit({
    Unit: {
      Description: 'kubelet: the Kubernetes node agent',
      Documentation: 'https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/',
      Wants: 'network-online.target containerd.service',
      After: 'network-online.target containerd.service',
      StartLimitIntervalSec: 0,
    },
    Service: {
      EnvironmentFile: `-${i.flagsPath}`,
      ExecStart: `${i.binary} --config=${i.configPath} $KUBELET_ARGS`,
      Restart: 'always',
      RestartSec: '5s',
      CPUAccounting: true,
      MemoryAccounting: true,
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}

export interface KubeletFlagsInput {
  readonly kubeconfig: string;
  /** Workers: TLS bootstrap. */
  readonly bootstrapKubeconfig?: string;
  readonly certDir: string;
  readonly nodeName: string;
  /** --node-ip: the Node's InternalIP (an extraArgs node-ip wins). */
  readonly nodeIp: string;
  readonly nodeLabels: Readonly<Record<string, string>>;
  readonly extraArgs: Readonly<Record<string, string>>;
}

/** The flags file: one KUBELET_ARGS line, flags in a fixed order, labels and extra flags sorted. */
export function renderKubeletFlags(i: KubeletFlagsInput): string {
  const flags = [
    ...(i.bootstrapKubeconfig ? [`--bootstrap-kubeconfig=${i.bootstrapKubeconfig}`] : []),
    `--kubeconfig=${i.kubeconfig}`,
    `--cert-dir=${i.certDir}`,
    `--hostname-override=${i.nodeName}`,
    ...(i.extraArgs['node-ip'] === undefined ? [`--node-ip=${i.nodeIp}`] : []),
  ];
  const labels = Object.entries(i.nodeLabels).sort(([a], [b]) => compareText(a, b));
  if (labels.length > 0) flags.push(`--node-labels=${labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  for (const [k, v] of Object.entries(i.extraArgs).sort(([a], [b]) => compareText(a, b))) flags.push(`--${k}=${v}`);
  return `# ${managedHeader}\nKUBELET_ARGS="${flags.join(' ')}"\n`;
}
