// Pure renderer for containerd's registry host files: /etc/containerd/certs.d/<registry>/hosts.toml,
// one per mirrored registry ("*" -> _default). Mirrors are tried in the order given, then the
// upstream `server` (none for _default: the pulled name's own registry).
import { managedHeader } from '../engine/tasks/file.ts';
import { tomlString } from './toml.ts';

export { hostsDirName } from '../model/paths/containerd.ts';

/** The upstream server of a registry (docker.io's API lives at registry-1.docker.io). Pure. */
export function upstreamServer(registry: string): string | undefined {
  if (registry === '*') return undefined;
  if (registry === 'docker.io') return 'https://registry-1.docker.io';
  return `https://${registry}`;
}

export function renderHostsToml(registry: string, mirrors: readonly string[]): string {
  const lines = [`# ${managedHeader}`, `# Mirrors for ${registry === '*' ? 'every registry' : registry}, tried in this order.`];
  const server = upstreamServer(registry);
  if (server) lines.push(`server = ${tomlString(server)}`);
  for (const m of mirrors) {
    lines.push('', `[host.${tomlString(m.replace(/\/+$/, ''))}]`, `  capabilities = ["pull", "resolve"]`);
  }
  return lines.join('\n') + '\n';
}
