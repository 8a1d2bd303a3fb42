// What a launch reads and serves on this machine: the NodeConfig file, the embedded or served
// state store (and which keys each role may read), and private copies of the nodeup binary with
// their hashes.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configHash, parseNodeConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import type { Logger } from '../engine/log.ts';
import { storeLayout } from '../engine/state-store.ts';
import { openStateStore } from '../statestore/open.ts';
import '../statestore/backends.ts';

/** Where the qemu guest keeps its embedded state store. */
export const embeddedStoreDir = '/var/lib/nodeup/launch-store';

export interface NodeConfigInput {
  readonly raw: Buffer;
  readonly hash: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly role: 'control-plane' | 'worker';
}

export async function readNodeConfigFile(file: string): Promise<NodeConfigInput> {
  const raw = await fsp.readFile(file).catch((err: unknown) => {
    throw new AgentError('USAGE', `--node-config ${file}: cannot read it (${(err as { code?: string }).code ?? String(err)})`, { cause: err, details: { file } });
  });
  const cfg = parseNodeConfig(raw, file);
  return { raw, hash: configHash(raw), cluster: cfg.metadata.cluster, instanceGroup: cfg.metadata.instanceGroup, role: cfg.spec.role };
}

/** Whether `xz -dc file` gives bytes with this SHA-256 (false without xz on this machine). */
export async function xzUnpacksTo(file: string, sha256: string): Promise<boolean> {
  return new Promise((resolve) => {
    const h = createHash('sha256');
    const child = spawn('xz', ['-dc', file], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', (d: Buffer) => h.update(d));
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0 && h.digest('hex') === sha256));
  });
}

export { sha256File } from '../engine/host/local.ts';

/** Files of an embedded file:// store for a node: its NodeConfig and, from a file:// store, its secrets. */
export async function embeddedStoreFiles(cfg: NodeConfigInput, stateStore: string | undefined, log: Logger): Promise<{ path: string; content: Buffer; mode: string }[]> {
  const files = [{ path: `${embeddedStoreDir}/${storeLayout.nodeConfig(cfg.instanceGroup)}`, content: cfg.raw, mode: '0600' }];
  if (stateStore) {
    const store = openStateStore(stateStore, { log });
    const keys = [storeLayout.pki('ca.crt'), ...(cfg.role === 'worker' ? [storeLayout.secret('bootstrap-token')] : [])];
    for (const k of keys) {
      const data = await store.read(k);
      if (data) files.push({ path: `${embeddedStoreDir}/${k}`, content: data, mode: '0600' });
    }
  }
  return files;
}

/**
 * The store keys a node of this role may read over HTTP: workers get their NodeConfig, the CA
 * certificate and the bootstrap token, never a key; control-plane nodes get the whole store. Pure.
 */
export function storeAllowFor(cfg: Pick<NodeConfigInput, 'role' | 'instanceGroup'>): (key: string) => boolean {
  if (cfg.role === 'control-plane') return () => true;
  const allowed = new Set([storeLayout.nodeConfig(cfg.instanceGroup), storeLayout.pki('ca.crt'), storeLayout.secret('bootstrap-token')]);
  return (key) => allowed.has(key);
}

/** The directory of a file:// store to serve; its NodeConfig must be the file's bytes (published). */
export async function servedStoreDir(stateStore: string, cfg: NodeConfigInput): Promise<string> {
  if (!stateStore.startsWith('file://')) {
    throw new AgentError('USAGE', `--state-store: the qemu provider serves a file:// store to its guests, got ${stateStore}`, { details: { field: '--state-store' } });
  }
  const dir = fileURLToPath(stateStore);
  const key = storeLayout.nodeConfig(cfg.instanceGroup);
  const stored = await fsp.readFile(path.join(dir, key)).catch(() => undefined);
  if (!stored || configHash(stored) !== cfg.hash) {
    throw new AgentError('USAGE', `--state-store ${stateStore}: ${key} ${stored ? 'differs from' : 'is missing, not'} --node-config; publish the NodeConfig to the store first`, {
      details: { field: '--state-store', key },
    });
  }
  return dir;
}

/** Copies a file into dir under a name unique to this run, so later changes to the source do not reach guests. */
export async function snapshotFile(src: string, dir: string): Promise<string> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const old of await fsp.readdir(dir)) {
    const st = await fsp.stat(path.join(dir, old)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 24 * 3600_000) await fsp.rm(path.join(dir, old), { force: true });
  }
  const dest = path.join(dir, `${path.basename(src)}-${process.pid}-${Date.now().toString(36)}`);
  await fsp.copyFile(src, dest).catch((err: unknown) => {
    throw new AgentError('USAGE', `--binary ${src}: cannot read it (${(err as { code?: string }).code ?? String(err)}); build it with npm run build`, { cause: err, details: { file: src } });
  });
  return dest;
}
