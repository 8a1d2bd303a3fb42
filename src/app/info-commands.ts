// The light commands: status and schema (version is in version.ts). They import neither the
// components nor the executor, so `nodeup status` evaluates next to nothing of the bundle.
import { type Command } from './cli.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { receiptPath, type Receipt } from './receipt.ts';
import { writeLocalFile } from '../engine/host/local.ts';

export const statusCommand: Command = {
  name: 'status',
  summary: "print the last run's receipt",
  usage: 'nodeup status [--root DIR] [--json]',
  options: { json: { type: 'boolean' } },
  async run(ctx) {
    const host = new NodeHost({ root: String(ctx.values.root) });
    const raw = await host.fs.read(receiptPath);
    if (!raw) {
      ctx.out(`no receipt at ${receiptPath}: nodeup has not run here yet\n`);
      return 1;
    }
    if (ctx.values.json) {
      ctx.out(raw.toString('utf8'));
    } else {
      const r = JSON.parse(raw.toString('utf8')) as Receipt;
      ctx.out(
        [
          `node:     ${r.nodeName} (${r.cluster}/${r.instanceGroup})`,
          `result:   ${r.result} (${r.mode}, ${r.changed} changed, ${r.failed} failed, ${r.blocked} blocked)`,
          `when:     ${r.startedAt} .. ${r.finishedAt} (${r.durationMs} ms)`,
          `config:   ${r.configHash}`,
          `nodeup:   ${r.nodeupVersion}`,
          ...(r.error ? [`error:    ${r.error.code}: ${r.error.message}`] : []),
          ...r.tasks.filter((t) => t.status === 'failed' || t.status === 'blocked').map((t) => `  ${t.status} ${t.key}${t.error ? `: ${t.error.message}` : ''}${t.blockedBy ? ` (by ${t.blockedBy})` : ''}`),
        ].join('\n') + '\n',
      );
    }
    return r0(raw);
  },
};

function r0(raw: Buffer): number {
  try {
    return (JSON.parse(raw.toString('utf8')) as Receipt).result === 'converged' ? 0 : 1;
  } catch {
    return 1;
  }
}

export const schemaCommand: Command = {
  name: 'schema',
  summary: 'print (or write) the JSON Schemas of the boot and node configs',
  usage: 'nodeup schema [--out DIR]',
  options: { out: { type: 'string' } },
  async run(ctx) {
    // Loaded here: the schemas are every component's zod schema, which status does not need.
    const { jsonSchemas } = await import('../model/config.ts');
    const schemas = jsonSchemas();
    if (typeof ctx.values.out === 'string') {
      for (const [name, s] of Object.entries(schemas)) await writeLocalFile(`${ctx.values.out}/${name}`, JSON.stringify(s, null, 2) + '\n');
      return 0;
    }
    ctx.out(JSON.stringify(schemas, null, 2) + '\n');
    return 0;
  },
};
