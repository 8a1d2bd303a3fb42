// The cluster's CAs and service-account key pair in the state store (pki/), created once by the
// first control-plane node under a state-store lock (pki/.lock, taken with a create-only write), so
// two nodes racing end with one CA. Also the workers' bootstrap token (secrets/bootstrap-token).
import { randomBytes } from 'node:crypto';
import { AgentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { silentLogger } from '../log.ts';
import { clockOf } from '../retry.ts';
import { storeLayout, type StateStore } from '../state-store.ts';
import { createCa, createKeyPair, type KeyPairPem } from './x509.ts';

/** The CAs every cluster has. etcd peers get their own CA so a client cert can never join the ring. */
export const clusterCas = {
  ca: 'kubernetes',
  'etcd-ca': 'etcd-ca',
  'etcd-peer-ca': 'etcd-peer-ca',
  'front-proxy-ca': 'front-proxy-ca',
} as const;
export type CaName = keyof typeof clusterCas;
export const caNames = Object.keys(clusterCas) as CaName[];

export const pkiLockKey = storeLayout.pki('.lock');
export const bootstrapTokenKey = storeLayout.secret('bootstrap-token');

/** Every object the complete cluster PKI has in the store. */
export function pkiKeys(): readonly string[] {
  return [...caNames.flatMap((n) => [storeLayout.pki(`${n}.crt`), storeLayout.pki(`${n}.key`)]), storeLayout.pki('sa.key'), storeLayout.pki('sa.pub')];
}

export async function pkiComplete(store: StateStore): Promise<boolean> {
  for (const k of pkiKeys()) if ((await store.read(k)) === undefined) return false;
  return true;
}

export interface EnsurePkiOptions {
  /** Who takes the lock (node name): shown to whoever waits for it. */
  readonly holder: string;
  readonly log?: Logger;
  readonly timeoutMs?: number;
  /**
   * This machine's boot id (/proc/sys/kernel/random/boot_id), kept in the lock: a lock this node
   * took in an earlier boot belongs to a run that a power cut or reboot ended, and is broken.
   */
  readonly boot?: string;
  /** A lock older than this is reported as stale (never broken silently). */
  readonly staleMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

interface LockBody {
  readonly holder: string;
  readonly at: number;
  readonly boot?: string;
}

/** Makes sure the cluster PKI exists. Returns 'created' for the one caller that created it. */
export async function ensureClusterPki(store: StateStore, opts: EnsurePkiOptions): Promise<'created' | 'existing'> {
  const log = opts.log ?? silentLogger;
  const clock = clockOf(opts);
  const deadline = clock.now() + (opts.timeoutMs ?? 120_000);
  const staleMs = opts.staleMs ?? 300_000;
  if (!store.writable) {
    throw new AgentError('PKI', `state store ${store.url} is read-only: the cluster PKI must be created by a node with write access`, { details: { store: store.url } });
  }
  for (let attempt = 1; ; attempt++) {
    if (await pkiComplete(store)) return 'existing';
    const body: LockBody = { holder: opts.holder, at: clock.now(), ...(opts.boot ? { boot: opts.boot } : {}) };
    if (await store.write(pkiLockKey, JSON.stringify(body), { ifAbsent: true })) {
      try {
        log.info({ holder: opts.holder }, 'creating the cluster pki');
        const created = await createMissing(store);
        log.info({ created }, 'cluster pki ready');
        return created.length > 0 ? 'created' : 'existing';
      } finally {
        await store.remove(pkiLockKey);
      }
    }
    const raw = await store.read(pkiLockKey);
    let lock: LockBody | undefined;
    try {
      lock = raw ? (JSON.parse(raw.toString('utf8')) as LockBody) : undefined;
    } catch {
      lock = undefined;
    }
    if (lock && opts.boot && lock.boot && lock.holder === opts.holder && lock.boot !== opts.boot) {
      log.warn({ holder: lock.holder, since: new Date(lock.at).toISOString() }, 'breaking the pki lock this node took in an earlier boot (that run never finished)');
      await store.remove(pkiLockKey);
      continue;
    }
    if (lock && clock.now() - lock.at > staleMs) {
      throw new AgentError(
        'LOCKED',
        `the pki lock ${pkiLockKey} is held by ${lock.holder} since ${new Date(lock.at).toISOString()}: if that node is gone, remove the key from the state store and run again`,
        { details: { key: pkiLockKey, holder: lock.holder } },
      );
    }
    if (clock.now() > deadline) {
      throw new AgentError('LOCKED', `timed out waiting for ${lock?.holder ?? 'another node'} to create the cluster pki (${pkiLockKey})`, {
        details: { key: pkiLockKey, holder: lock?.holder },
      });
    }
    if (attempt === 1) log.info({ holder: lock?.holder }, 'waiting for another node to create the cluster pki');
    await clock.sleep(Math.min(100 * attempt, 1000));
  }
}

/** Under the lock: creates what is missing. A certificate without its key cannot be repaired. */
async function createMissing(store: StateStore): Promise<string[]> {
  const created: string[] = [];
  for (const name of caNames) {
    const crtKey = storeLayout.pki(`${name}.crt`);
    const keyKey = storeLayout.pki(`${name}.key`);
    const crt = await store.read(crtKey);
    const key = await store.read(keyKey);
    if (crt && key) continue;
    if (crt && !key) {
      throw new AgentError('PKI', `state store has ${crtKey} but not ${keyKey}: restore the key from a backup; nodeup will not replace a CA`, {
        details: { key: keyKey },
      });
    }
    const ca = await createCa(clusterCas[name]);
    // Key first (plain write: we hold the lock), then the certificate, create-only: the certificate
    // is what marks a CA as existing.
    await store.write(keyKey, ca.keyPem, { secret: true });
    if (!(await store.write(crtKey, ca.certPem, { ifAbsent: true }))) {
      throw new AgentError('PKI', `${crtKey} appeared while this node held the pki lock: another writer ignores the lock`, { details: { key: crtKey } });
    }
    created.push(name);
  }
  if (!(await store.read(storeLayout.pki('sa.pub')))) {
    const sa = await createKeyPair();
    await store.write(storeLayout.pki('sa.key'), sa.privatePem, { secret: true });
    await store.write(storeLayout.pki('sa.pub'), sa.publicPem, { ifAbsent: true });
    created.push('sa');
  }
  return created;
}

/** A CA's certificate and key from the store; a clear error when the PKI was not created. */
export async function readCa(store: StateStore, name: CaName): Promise<KeyPairPem> {
  const crt = await store.read(storeLayout.pki(`${name}.crt`));
  const key = await store.read(storeLayout.pki(`${name}.key`));
  if (!crt || !key) {
    throw new AgentError('PKI', `state store ${store.url} has no ${name} CA (pki/${name}.crt and .key): a control-plane node creates it on its first apply`, {
      details: { ca: name },
    });
  }
  return { certPem: crt.toString('utf8'), keyPem: key.toString('utf8') };
}

export async function readCaCert(store: StateStore, name: CaName): Promise<string | undefined> {
  return (await store.read(storeLayout.pki(`${name}.crt`)))?.toString('utf8');
}

const tokenAlphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomToken(n: number): string {
  const b = randomBytes(n);
  let s = '';
  for (const byte of b) s += tokenAlphabet[byte % tokenAlphabet.length];
  return s;
}

/** A kubeadm-style bootstrap token "<6>.<16>", valid for kubelet TLS bootstrap. */
export const bootstrapTokenRe = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

/** Makes sure the workers' bootstrap token exists in the store; returns it (the winner's, when racing). */
export async function ensureBootstrapToken(store: StateStore): Promise<string> {
  const existing = await store.read(bootstrapTokenKey);
  if (existing) return existing.toString('utf8').trim();
  const token = `${randomToken(6)}.${randomToken(16)}`;
  await store.write(bootstrapTokenKey, token + '\n', { ifAbsent: true, secret: true });
  const stored = await store.read(bootstrapTokenKey);
  if (!stored) throw new AgentError('PKI', `cannot read back ${bootstrapTokenKey} from ${store.url}`, { details: { key: bootstrapTokenKey } });
  return stored.toString('utf8').trim();
}
