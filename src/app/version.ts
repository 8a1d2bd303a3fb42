// Build identity, replaced by esbuild `define` in the bundle; source runs report "dev". Also
// `nodeup version`, which needs nothing else (the binary's entry, sea-main.ts, answers it alone).
import type { Command } from './cli.ts';

declare const __NODEUP_VERSION__: string | undefined;
declare const __NODEUP_COMMIT__: string | undefined;

export const nodeupVersion: string = typeof __NODEUP_VERSION__ === 'string' ? __NODEUP_VERSION__ : '0.0.0-dev';
export const nodeupCommit: string = typeof __NODEUP_COMMIT__ === 'string' ? __NODEUP_COMMIT__ : 'dev';

export const versionCommand: Command = {
  name: 'version',
  summary: 'print the version, commit and embedded Node',
  usage: 'nodeup version [--json]',
  options: { json: { type: 'boolean' } },
  logs: false,
  async run(ctx) {
    ctx.out(versionText(ctx.values.json === true));
    return 0;
  },
};

/** What `nodeup version [--json]` prints; the binary's entry (sea-main.ts) prints it without the bundle. */
export function versionText(json: boolean): string {
  const v = { version: nodeupVersion, commit: nodeupCommit, node: process.version, platform: `${process.platform}/${process.arch}` };
  return json ? JSON.stringify(v) + '\n' : `nodeup ${v.version} (commit ${v.commit}, node ${v.node}, ${v.platform})\n`;
}
