// `nodeup example` and `nodeup publish`: the orchestrator side of configs.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from './cli.ts';
import { AgentError } from '../engine/errors.ts';
import { readLocalFile, writeLocalFile, makeLocalDir } from '../engine/host/local.ts';
import { publishNodeConfig, renderBootConfig, writeExample } from './example.ts';
import { validateFiles } from './validate-command.ts';
import { openStateStore } from '../statestore/open.ts';
import '../statestore/backends.ts';

export const exampleCommand: Command = {
  name: 'example',
  summary: 'write the embedded example cluster: a file:// state store and one boot config per group',
  usage: 'nodeup example --dir DIR',
  options: { dir: { type: 'string' } },
  async run(ctx) {
    if (typeof ctx.values.dir !== 'string') throw new AgentError('USAGE', 'nodeup example needs --dir DIR');
    const dir = path.resolve(ctx.values.dir);
    await makeLocalDir(path.join(dir, 'state'));
    const store = openStateStore(pathToFileURL(path.join(dir, 'state')).href, { log: ctx.log });
    const out = await writeExample(store);
    for (const [ig, boot] of Object.entries(out.boots)) {
      await writeLocalFile(path.join(dir, `boot-${ig}.yaml`), renderBootConfig(boot));
      ctx.out(`wrote ${path.join(dir, `boot-${ig}.yaml`)} (${boot.nodeConfigHash})\n`);
    }
    ctx.out(`state store: ${out.stateUrl}\nnext: nodeup plan --config ${path.join(dir, 'boot-nodes.yaml')} --root <scratch root>\n`);
    return 0;
  },
};

export const publishCommand: Command = {
  name: 'publish',
  summary: "validate an instance group's NodeConfig, store it, and print the boot config that pins its hash",
  usage: 'nodeup publish --state URL --file node.yaml [--boot-out FILE]',
  options: { state: { type: 'string' }, file: { type: 'string' }, 'boot-out': { type: 'string' } },
  async run(ctx) {
    if (typeof ctx.values.state !== 'string' || typeof ctx.values.file !== 'string') {
      throw new AgentError('USAGE', 'nodeup publish needs --state URL and --file node.yaml');
    }
    // Every rule a node would apply (with the components', on each distro): refused here, not at boot.
    const checked = await validateFiles([ctx.values.file], ctx.log);
    if (checked.failures.length > 0) {
      for (const f of checked.failures) process.stderr.write(`nodeup publish: ${f}\n`);
      return 2;
    }
    const raw = await readLocalFile(ctx.values.file, 'node config');
    const store = openStateStore(ctx.values.state, { log: ctx.log });
    const boot = await publishNodeConfig(store, raw, ctx.values.file);
    const text = renderBootConfig(boot);
    if (typeof ctx.values['boot-out'] === 'string') await writeLocalFile(ctx.values['boot-out'], text);
    else ctx.out(text);
    return 0;
  },
};
