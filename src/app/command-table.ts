// The command table: what `nodeup --help` lists, and where each command's module is. A command's
// module (and so everything it imports: components, AWS SDK, ssh2, ...) is loaded only when that
// command runs: esbuild keeps a dynamically imported module of the one CJS bundle behind a lazy
// init function, so `nodeup version` evaluates the version module and nothing else.
// The summaries here must equal the commands' own (command-table.test.ts checks).
import type { Command } from './cli.ts';

export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Loads the command's module and returns the command. */
  load(): Promise<Command>;
}

/** In the order `nodeup --help` lists them: the node's own commands, then the operator's. */
export const commandTable: readonly CommandEntry[] = [
  { name: 'apply', summary: 'converge this node to its config (what every boot runs)', load: async () => (await import('./commands.ts')).applyCommand },
  { name: 'plan', summary: 'print every change apply would make, and make none', load: async () => (await import('./commands.ts')).planCommand },
  {
    name: 'rollback',
    summary: 'converge this node back to its last good config (kept on the node after each whole apply that converged), without the state store',
    load: async () => (await import('./commands.ts')).rollbackCommand,
  },
  { name: 'ready', summary: "wait until this node's kubelet is healthy and its Node Ready (a rollout's gate); exit 1 at the timeout", load: async () => (await import('./ready-command.ts')).readyCommand },
  { name: 'status', summary: "print the last run's receipt", load: async () => (await import('./info-commands.ts')).statusCommand },
  {
    name: 'install-unit',
    summary: 'install nodeup.service (runs apply at every boot) and start it without waiting',
    load: async () => (await import('./commands.ts')).installUnitCommand,
  },
  { name: 'bake', summary: 'prepare a machine image: install and cache everything, install nodeup.service, seal, write a bake manifest', load: async () => (await import('../bootstrap/bake.ts')).bakeCommand },
  { name: 'userdata', summary: 'render the cloud-init user-data of an instance group (a short script; no secrets)', load: async () => (await import('../bootstrap/userdata-command.ts')).userdataCommand },
  { name: 'launch', summary: 'create machines for an instance group (qemu or aws) and wait for their receipts; --list, --delete', load: async () => (await import('../orchestrator/cli.ts')).launchCommand },
  { name: 'ssh', summary: 'reprovision hosts over SSH: upload nodeup if changed, write the boot config, run apply (or plan)', load: async () => (await import('../ssh/command.ts')).sshCommand },
  { name: 'etcd', summary: 'etcd operations: members, backup, restore, remove', load: async () => (await import('./etcd-command.ts')).etcdCommand },
  { name: 'routes', summary: "keep routes to the other nodes' pod subnets in step with the Node objects (bridge CNI)", load: async () => (await import('./routes-command.ts')).routesCommand },
  {
    name: 'mirror',
    summary: 'stage what the nodes of some NodeConfigs fetch (assets per architecture, nodeup binaries, images) into a mirror for an air-gapped cluster',
    load: async () => (await import('../mirror/command.ts')).mirrorCommand,
  },
  { name: 'publish', summary: "validate an instance group's NodeConfig, store it, and print the boot config that pins its hash", load: async () => (await import('./example-command.ts')).publishCommand },
  { name: 'validate', summary: 'check a NodeConfig, or a boot config and the NodeConfig it pins, without a node (exit 0 or 2)', load: async () => (await import('./validate-command.ts')).validateCommand },
  { name: 'example', summary: 'write the embedded example cluster: a file:// state store and one boot config per group', load: async () => (await import('./example-command.ts')).exampleCommand },
  { name: 'schema', summary: 'print (or write) the JSON Schemas of the boot and node configs', load: async () => (await import('./info-commands.ts')).schemaCommand },
  { name: 'version', summary: 'print the version, commit and embedded Node', load: async () => (await import('./version.ts')).versionCommand },
];
