// Test helper: a NodeModel from a golden case's model.yaml (a NodeConfig plus the host's distro).
import * as yaml from 'js-yaml';
import { parseNodeConfig } from '../../src/model/config.ts';
import { readLocalFile } from '../../src/engine/host/local.ts';
import type { NodeModel } from '../../src/model/node-model.ts';
import { modelOf } from './model.ts';

export interface CaseFile {
  /** os-release id and version, e.g. { id: rocky, versionId: "9" }; default Debian 12. */
  readonly os?: { readonly id: string; readonly versionId: string };
  readonly arch?: 'amd64' | 'arm64';
  readonly live?: boolean;
  readonly bake?: boolean;
  readonly config: unknown;
}


export function modelFromCase(text: string, source: string): NodeModel {
  const c = yaml.load(text) as CaseFile;
  const config = parseNodeConfig(JSON.stringify(c.config), source);
  const facts = {
    ...(c.os ? { osRelease: { id: c.os.id, idLike: [], versionId: c.os.versionId, prettyName: `${c.os.id} ${c.os.versionId}` } } : {}),
    ...(c.arch ? { arch: c.arch } : {}),
  };
  return modelOf(config, { facts, live: c.live ?? false, bake: c.bake ?? false });
}

export async function loadCase(file: string): Promise<NodeModel> {
  return modelFromCase(await readLocalFile(file, 'golden case'), file);
}
