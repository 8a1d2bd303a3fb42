// Layer: engine (README "How it works"). Imports no project layer above it: only src/engine.
// PKI task kinds.
//  - `pki:cluster`: the cluster's CAs exist in the state store (created under the store lock).
//  - `pki:bootstrap-token`: the workers' bootstrap token exists in the state store.
//  - `pki:<path>`: a state-store object (a CA certificate, the service-account key) copied to disk.
//  - `cert:<id>`: a leaf certificate (PEM pair or kubeconfig) issued on this node by a CA from the
//    store; observed on disk with its remaining life, renewed when a third of it is left, when its
//    names differ, or when it was not signed by the store's current CA. Keys are written 0600.
// Plans print hashes and reasons, never key material.
import * as path from 'node:path/posix';
import type { Host } from '../host/host.ts';
import { AgentError } from '../errors.ts';
import { shortHash } from '../tasks/file.ts';
import { fieldChange, octal, type ApplyContext, type Change, type Task, type TaskContext, type TaskKey } from '../task.ts';
import { ensureBootstrapToken, ensureClusterPki, pkiComplete, readCa, readCaCert, bootstrapTokenKey, type CaName } from './cluster-pki.ts';
import { parseKubeconfig, renderKubeconfig } from './kubeconfig.ts';
import { canonicalIp, certInfo, issueLeaf, keyMatchesCert, signedBy, type CertInfo, type LeafRequest } from './x509.ts';

export const clusterPkiKey: TaskKey = 'pki:cluster';
export const bootstrapTokenTaskKey: TaskKey = 'pki:bootstrap-token';

/** `pki:cluster`: the CAs exist in the store. */
export class ClusterPkiTask implements Task<boolean> {
  readonly key: TaskKey = clusterPkiKey;
  readonly after: readonly TaskKey[] = [];
  private readonly holder: string;
  constructor(holder: string) {
    this.holder = holder;
  }
  observe(_host: Host, ctx: TaskContext): Promise<boolean> {
    return pkiComplete(ctx.store);
  }
  diff(actual: boolean | undefined): readonly Change[] {
    return actual ? [] : [{ field: 'create', to: 'cluster CAs and service-account key in the state store' }];
  }
  async apply(host: Host, _c: readonly Change[], ctx: ApplyContext): Promise<void> {
    const boot = (await host.fs.read('/proc/sys/kernel/random/boot_id'))?.toString('utf8').trim();
    await ensureClusterPki(ctx.store, { holder: this.holder, log: ctx.log, sleep: (ms) => host.sleep(ms), now: () => host.now(), ...(boot ? { boot } : {}) });
  }
}

/** `pki:bootstrap-token`: the workers' bootstrap token exists in the store. */
export class BootstrapTokenTask implements Task<boolean> {
  readonly key: TaskKey = bootstrapTokenTaskKey;
  readonly after: readonly TaskKey[] = [];
  async observe(_host: Host, ctx: TaskContext): Promise<boolean> {
    return (await ctx.store.read(bootstrapTokenKey)) !== undefined;
  }
  diff(actual: boolean | undefined): readonly Change[] {
    return actual ? [] : [{ field: 'create', to: `${bootstrapTokenKey} in the state store` }];
  }
  async apply(_host: Host, _c: readonly Change[], ctx: ApplyContext): Promise<void> {
    await ensureBootstrapToken(ctx.store);
  }
}

export interface StoreFileSpec {
  readonly path: string;
  readonly storeKey: string;
  readonly mode: number;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

interface StoreFileActual {
  readonly diskHash: string | undefined;
  readonly diskMode: number | undefined;
  readonly storeHash: string | undefined;
}

/** `pki:<path>`: a state-store object (CA certificate, service-account key) mirrored to disk. */
export class StoreFileTask implements Task<StoreFileActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  readonly spec: StoreFileSpec;
  constructor(spec: StoreFileSpec) {
    this.spec = spec;
    this.key = `pki:${spec.path}`;
    this.path = spec.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }
  async observe(host: Host, ctx: TaskContext): Promise<StoreFileActual> {
    const disk = await host.fs.read(this.spec.path);
    const st = disk ? await host.fs.stat(this.spec.path) : undefined;
    const stored = await ctx.store.read(this.spec.storeKey);
    return { diskHash: disk ? shortHash(disk) : undefined, diskMode: st?.mode, storeHash: stored ? shortHash(stored) : undefined };
  }
  diff(a: StoreFileActual | undefined): readonly Change[] {
    if (!a || a.storeHash === undefined) return [{ field: 'create', to: `from ${this.spec.storeKey} mode ${octal(this.spec.mode)}` }];
    if (a.diskHash === undefined) return [{ field: 'create', to: `${a.storeHash} from ${this.spec.storeKey} mode ${octal(this.spec.mode)}` }];
    const out: Change[] = [];
    if (a.diskHash !== a.storeHash) out.push(fieldChange('content', a.diskHash, a.storeHash));
    if (a.diskMode !== this.spec.mode) out.push(fieldChange('mode', a.diskMode === undefined ? undefined : octal(a.diskMode), octal(this.spec.mode)));
    return out;
  }
  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    if (changes.length === 1 && changes[0]?.field === 'mode') return host.fs.chmod(this.spec.path, this.spec.mode);
    const data = await ctx.store.read(this.spec.storeKey);
    if (!data) {
      throw new AgentError('PKI', `state store ${ctx.store.url} has no ${this.spec.storeKey}`, { details: { key: this.spec.storeKey } });
    }
    await host.fs.mkdirp(path.dirname(this.spec.path), 0o755);
    await host.fs.writeAtomic(this.spec.path, data, { mode: this.spec.mode });
  }
}

export type CertOutput =
  | { readonly kind: 'pem'; readonly certPath: string; readonly keyPath: string }
  | { readonly kind: 'kubeconfig'; readonly path: string; readonly server: string; readonly clusterName: string; readonly user: string };

export interface CertSpec {
  /** Stable id: the task key is `cert:<id>`. */
  readonly id: string;
  readonly ca: CaName;
  readonly request: LeafRequest;
  readonly output: CertOutput;
  /** Renew when less than this fraction of the certificate's life is left (default 1/3). */
  readonly renewFraction?: number;
  readonly after?: readonly TaskKey[];
  readonly notify?: readonly TaskKey[];
}

export interface CertActual {
  readonly info?: CertInfo;
  readonly keyPresent: boolean;
  readonly keyMatches: boolean;
  readonly keyMode?: number;
  /** undefined when the store has no CA yet (first run). */
  readonly signedByCa?: boolean;
  readonly server?: string;
  readonly caMatches?: boolean;
  readonly now: number;
}

const sorted = (xs: readonly string[]): string => [...xs].sort().join(',');

export class CertTask implements Task<CertActual> {
  readonly key: TaskKey;
  readonly after: readonly TaskKey[];
  readonly notify: readonly TaskKey[];
  readonly path: string;
  readonly spec: CertSpec;
  constructor(spec: CertSpec) {
    this.spec = spec;
    this.key = `cert:${spec.id}`;
    this.path = spec.output.kind === 'pem' ? spec.output.certPath : spec.output.path;
    this.after = spec.after ?? [];
    this.notify = spec.notify ?? [];
  }

  /** Every node path this task writes (for tests: no CA key among them). */
  paths(): readonly string[] {
    return this.spec.output.kind === 'pem' ? [this.spec.output.certPath, this.spec.output.keyPath] : [this.spec.output.path];
  }

  async observe(host: Host, ctx: TaskContext): Promise<CertActual | undefined> {
    const out = this.spec.output;
    let certPem: string | undefined;
    let keyPem: string | undefined;
    let keyMode: number | undefined;
    let server: string | undefined;
    let caPem: string | undefined;
    if (out.kind === 'pem') {
      certPem = (await host.fs.read(out.certPath))?.toString('utf8');
      keyPem = (await host.fs.read(out.keyPath))?.toString('utf8');
      keyMode = keyPem !== undefined ? (await host.fs.stat(out.keyPath))?.mode : undefined;
    } else {
      const text = (await host.fs.read(out.path))?.toString('utf8');
      if (text !== undefined) {
        const parts = parseKubeconfig(text);
        ({ certPem, keyPem, server, caPem } = parts);
        keyMode = (await host.fs.stat(out.path))?.mode;
      }
    }
    if (certPem === undefined) return undefined;
    let info: CertInfo | undefined;
    try {
      info = certInfo(certPem);
    } catch {
      info = undefined; // unreadable: replaced
    }
    const storeCa = await readCaCert(ctx.store, this.spec.ca);
    return {
      ...(info ? { info } : {}),
      keyPresent: keyPem !== undefined,
      keyMatches: keyPem !== undefined && keyMatchesCert(keyPem, certPem),
      ...(keyMode !== undefined ? { keyMode } : {}),
      ...(storeCa !== undefined ? { signedByCa: signedBy(certPem, storeCa) } : {}),
      ...(server !== undefined ? { server } : {}),
      ...(out.kind === 'kubeconfig' && storeCa !== undefined ? { caMatches: caPem === storeCa } : {}),
      now: host.now(),
    };
  }

  diff(a: CertActual | undefined): readonly Change[] {
    const req = this.spec.request;
    const wantNames = `CN=${req.commonName} dns=[${sorted(req.dnsNames ?? [])}] ip=[${sorted((req.ips ?? []).map(canonicalIp))}]`;
    if (!a) return [{ field: 'issue', to: `${wantNames} by ${this.spec.ca}` }];
    if (!a.info) return [{ field: 'issue', from: 'unreadable certificate', to: wantNames }];
    const out: Change[] = [];
    if (a.signedByCa === false) out.push({ field: 'issuer', from: 'another CA', to: this.spec.ca });
    const haveNames = `CN=${/CN=([^,]+)/.exec(a.info.subject)?.[1] ?? ''} dns=[${sorted(a.info.dnsNames)}] ip=[${sorted(a.info.ips)}]`;
    if (haveNames !== wantNames) out.push(fieldChange('names', haveNames, wantNames));
    if (sorted(a.info.extKeyUsages) !== sorted(req.usages)) out.push(fieldChange('usages', sorted(a.info.extKeyUsages), sorted(req.usages)));
    const life = a.info.notAfter.getTime() - a.info.notBefore.getTime();
    const left = a.info.notAfter.getTime() - a.now;
    const fraction = this.spec.renewFraction ?? 1 / 3;
    if (left < life * fraction) {
      out.push({ field: 'renew', from: `expires ${a.info.notAfter.toISOString()}`, to: `${req.validityDays} days` });
    }
    if (!a.keyPresent || !a.keyMatches) out.push({ field: 'key', from: a.keyPresent ? 'does not match' : 'missing', to: 'new key' });
    if (this.spec.output.kind === 'kubeconfig') {
      if (a.server !== this.spec.output.server) out.push(fieldChange('server', a.server, this.spec.output.server));
      if (a.caMatches === false) out.push({ field: 'ca', from: 'stale', to: this.spec.ca });
    }
    if (out.length === 0 && a.keyMode !== 0o600) out.push(fieldChange('mode', a.keyMode === undefined ? undefined : octal(a.keyMode), '0600'));
    return out;
  }

  async apply(host: Host, changes: readonly Change[], ctx: ApplyContext): Promise<void> {
    const out = this.spec.output;
    if (changes.length === 1 && changes[0]?.field === 'mode') {
      await host.fs.chmod(out.kind === 'pem' ? out.keyPath : out.path, 0o600);
      return;
    }
    const ca = await readCa(ctx.store, this.spec.ca);
    const leaf = await issueLeaf(ca, this.spec.request, new Date(host.now()));
    if (out.kind === 'pem') {
      await host.fs.mkdirp(path.dirname(out.keyPath), 0o755);
      await host.fs.mkdirp(path.dirname(out.certPath), 0o755);
      // Key first: a reader that sees the new certificate also finds its key.
      await host.fs.writeAtomic(out.keyPath, leaf.keyPem, { mode: 0o600 });
      await host.fs.writeAtomic(out.certPath, leaf.certPem, { mode: 0o644 });
    } else {
      await host.fs.mkdirp(path.dirname(out.path), 0o755);
      const text = renderKubeconfig({ clusterName: out.clusterName, server: out.server, caPem: ca.certPem, user: out.user, certPem: leaf.certPem, keyPem: leaf.keyPem });
      await host.fs.writeAtomic(out.path, text, { mode: 0o600 });
    }
    ctx.log.info({ cert: this.spec.id, ca: this.spec.ca, validityDays: this.spec.request.validityDays }, 'certificate issued');
  }
}
