// The thin orchestrator's provider contract: a provider creates machines that boot with a given
// user-data, lists the ones it made, and deletes them. It never decides what a node becomes —
// the user-data (boot config + nodeup) does.

export interface InstanceRequest {
  /** The machine's name; also its hostname and Kubernetes node name. */
  readonly name: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  /** Its NodeConfig's role: what a rollout over the instances (`nodeup ssh apply --instances`) orders by. */
  readonly role?: NodeRole;
  /** The cloud-config text the machine boots with. */
  readonly userData: string;
}

export type InstanceState = 'pending' | 'running' | 'stopped' | 'unknown';
export type NodeRole = 'control-plane' | 'worker';

export interface InstanceInfo {
  readonly name: string;
  readonly provider: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly state: InstanceState;
  /** Provider's own id: a pid for qemu, an instance id for aws. */
  readonly id: string;
  /** ISO time the instance was created. */
  readonly createdAt: string;
  /** What the last receipt said, when the provider keeps receipts (qemu). */
  readonly result?: string;
  /** Addresses people use to reach it (ssh forward, private IP). */
  readonly address?: string;
  /** The role it was launched with (absent in records made before roles were kept). */
  readonly role?: NodeRole;
  /** Where its sshd answers from this machine (qemu: the loopback forward; aws: the private IP, port 22). */
  readonly ssh?: { readonly host: string; readonly port: number };
}

export interface Provider {
  readonly name: string;
  launch(requests: readonly InstanceRequest[]): Promise<readonly InstanceInfo[]>;
  list(cluster?: string): Promise<readonly InstanceInfo[]>;
  /** Deletes the named instances; unknown names are an error, naming them. */
  delete(names: readonly string[]): Promise<void>;
}

/** Instance names: `<instanceGroup>-<n>`; must be valid hostnames and node names. Pure. */
export function instanceNames(instanceGroup: string, count: number, start = 1): string[] {
  return Array.from({ length: count }, (_, i) => `${instanceGroup}-${start + i}`);
}
