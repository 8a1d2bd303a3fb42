// Layer: application. May import every layer below (components, model, engine) and other app folders.
// `nodeup userdata`: renders the cloud-init user-data of an instance group. The node config's hash
// is read from the state store (or given), so the user-data changes whenever the config does —
// which is how a launch template tells that its nodes need replacing.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringList, type Command, type CommandContext } from '../app/cli.ts';
import { BootConfig, apiVersion, configHash, formatIssues, parseBootConfig, parseNodeConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { readLocalFile } from '../engine/host/local.ts';
import { nodeupVersion } from '../app/version.ts';
import { openStateStore } from '../statestore/open.ts';
import { storeLayout } from '../engine/state-store.ts';
import '../statestore/backends.ts';
import { assertUserDataSize, defaultBootConfigPath, defaultInstallPath, renderBootstrapScript, userDataLimitBytes, type BinaryArch, type UserDataInput } from './render-userdata.ts';

/** The user-data as handed to the cloud: the script, or its gzip (cloud-init unpacks it). */
export function renderUserData(input: UserDataInput, opts: { readonly gzip?: boolean } = {}): Buffer {
  const script = Buffer.from(renderBootstrapScript(input), 'utf8');
  const out = opts.gzip ? gzipSync(script, { level: 9 }) : script;
  assertUserDataSize(out.length);
  return out;
}

/** Reads the hash from a `sha256sum`-style file (`<hex>  <name>`) or a bare hex line. Pure. */
export function parseSha256File(text: string, source: string): string {
  const m = /^\s*([0-9a-fA-F]{64})\b/.exec(text);
  if (!m?.[1]) throw new AgentError('CONFIG_INVALID', `${source}: expected a SHA-256 (64 hex characters) at the start`, { details: { file: source } });
  return m[1].toLowerCase();
}

async function readDistHashes(dir: string): Promise<Partial<Record<BinaryArch, string>>> {
  const out: Partial<Record<BinaryArch, string>> = {};
  for (const arch of ['amd64', 'arm64'] as const) {
    const file = path.join(dir, `nodeup-linux-${arch}.sha256`);
    const text = await fsp.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) out[arch] = parseSha256File(text, file);
  }
  if (Object.keys(out).length === 0) {
    throw new AgentError('CONFIG_INVALID', `--dist ${dir}: no nodeup-linux-amd64.sha256 or nodeup-linux-arm64.sha256 there; run the build first or pass --sha256-amd64`, {
      details: { dir },
    });
  }
  return out;
}

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The boot config from --boot-config, or assembled from flags with the hash read from the store. */
async function bootConfigFrom(ctx: CommandContext): Promise<BootConfig> {
  const file = str(ctx, 'boot-config');
  let base: Record<string, unknown>;
  if (file) {
    base = { ...parseBootConfig(await readLocalFile(file, 'boot config'), file) };
  } else {
    const missing = ['state-store', 'cluster', 'instance-group'].filter((n) => !str(ctx, n));
    if (missing.length > 0) {
      throw new AgentError('USAGE', `nodeup userdata needs --boot-config FILE, or ${missing.map((m) => `--${m}`).join(', ')} (see nodeup userdata --help)`);
    }
    const s3Endpoint = str(ctx, 's3-endpoint');
    const s3Region = str(ctx, 's3-region');
    base = {
      apiVersion,
      kind: 'BootConfig',
      stateStore: str(ctx, 'state-store'),
      clusterName: str(ctx, 'cluster'),
      instanceGroup: str(ctx, 'instance-group'),
      ...(s3Endpoint || s3Region || ctx.values['s3-path-style']
        ? { s3: { ...(s3Endpoint ? { endpoint: s3Endpoint } : {}), ...(s3Region ? { region: s3Region } : {}), forcePathStyle: Boolean(ctx.values['s3-path-style']) } }
        : {}),
      assetMirrors: stringList(ctx.values['asset-mirror']),
    };
  }
  const given = str(ctx, 'node-config-hash');
  if (given) {
    base.nodeConfigHash = given;
  } else if (!file || ctx.values['refresh-hash']) {
    const url = String(base.stateStore);
    const ig = String(base.instanceGroup);
    const store = openStateStore(url, { s3: base.s3 as BootConfig['s3'], log: ctx.log });
    const key = storeLayout.nodeConfig(ig);
    const raw = await store.read(key);
    if (!raw) {
      throw new AgentError('STATE_STORE', `state store ${url} has no ${key}: publish the instance group ${ig} first, or pass --node-config-hash`, { details: { store: url, key } });
    }
    const cfg = parseNodeConfig(raw, `${url}/${key}`);
    if (cfg.metadata.cluster !== base.clusterName || cfg.metadata.instanceGroup !== ig) {
      throw new AgentError('CONFIG_INVALID', `${url}/${key} is for ${cfg.metadata.cluster}/${cfg.metadata.instanceGroup}, not ${String(base.clusterName)}/${ig}`, { details: { key } });
    }
    base.nodeConfigHash = configHash(raw);
  }
  const res = BootConfig.safeParse(base, { reportInput: true });
  if (!res.success) {
    const problems = formatIssues(res.error.issues);
    throw new AgentError('CONFIG_INVALID', `boot config: ${problems.join('; ')}`, { details: { problems } });
  }
  return res.data;
}

export const userdataCommand: Command = {
  name: 'userdata',
  summary: 'render the cloud-init user-data of an instance group (a short script; no secrets)',
  usage:
    'nodeup userdata (--boot-config FILE | --state-store URL --cluster NAME --instance-group NAME) --mirror URL [--mirror URL] (--dist DIR | --sha256-amd64 HEX [--sha256-arm64 HEX]) [--gzip] [--base64] [--out FILE]',
  options: {
    'boot-config': { type: 'string' },
    'state-store': { type: 'string' },
    cluster: { type: 'string' },
    'instance-group': { type: 'string' },
    'node-config-hash': { type: 'string' },
    'refresh-hash': { type: 'boolean' },
    's3-endpoint': { type: 'string' },
    's3-region': { type: 'string' },
    's3-path-style': { type: 'boolean' },
    'asset-mirror': { type: 'string', multiple: true },
    mirror: { type: 'string', multiple: true },
    dist: { type: 'string' },
    'sha256-amd64': { type: 'string' },
    'sha256-arm64': { type: 'string' },
    'install-path': { type: 'string', default: defaultInstallPath },
    'boot-config-path': { type: 'string', default: defaultBootConfigPath },
    gzip: { type: 'boolean' },
    base64: { type: 'boolean' },
    out: { type: 'string' },
  },
  async run(ctx) {
    const boot = await bootConfigFrom(ctx);
    const dist = str(ctx, 'dist');
    const sha256: Partial<Record<BinaryArch, string>> = dist ? await readDistHashes(dist) : {};
    for (const a of ['amd64', 'arm64'] as const) {
      const v = str(ctx, `sha256-${a}`);
      if (v) sha256[a] = v.toLowerCase();
    }
    const data = renderUserData(
      {
        bootConfig: boot,
        mirrors: stringList(ctx.values.mirror),
        sha256,
        version: nodeupVersion,
        installPath: String(ctx.values['install-path']),
        bootConfigPath: String(ctx.values['boot-config-path']),
      },
      { gzip: Boolean(ctx.values.gzip) },
    );
    const payload = ctx.values.base64 ? Buffer.from(data.toString('base64') + '\n') : data;
    const out = str(ctx, 'out');
    ctx.log.info({ bytes: data.length, limit: userDataLimitBytes, gzip: Boolean(ctx.values.gzip), nodeConfigHash: boot.nodeConfigHash }, 'user-data rendered');
    if (out) {
      const tmp = `${out}.tmp-${process.pid}`;
      await fsp.writeFile(tmp, payload, { mode: 0o644 });
      await fsp.rename(tmp, out);
      return 0;
    }
    if (ctx.values.gzip && !ctx.values.base64) throw new AgentError('USAGE', 'gzip output is binary: add --base64 or --out FILE');
    ctx.out(payload.toString('utf8'));
    return 0;
  },
};
