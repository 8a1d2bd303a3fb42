// The rendered kubelet and kube-proxy files of every golden case, decoded strictly by the upstream
// Go types of the matching Kubernetes release (k8s.io/kubelet, k8s.io/kube-proxy, k8s.io/api):
// an unknown, misspelled or mistyped field fails. The checker is built by
// scripts/setup-kube-config-check.sh (cached under ~/.cache/nodeup/kube-config-check/<version>/).
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { supportedMinors } from '../../src/model/assets/versions.ts';

const execFileP = promisify(execFile);
const cache = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache/nodeup');
const goldens = path.resolve(import.meta.dirname, '../golden/kubelet-matrix');
/** One staging release per minor (the API types do not change within a minor); same list as the setup script. */
const typesRelease: Record<string, string> = { '1.33': 'v0.33.13', '1.34': 'v0.34.2', '1.35': 'v0.35.1' };

async function checker(version: string): Promise<string> {
  const bin = path.join(cache, 'kube-config-check', version, 'kube-config-check');
  try {
    await fsp.access(bin, fsp.constants.X_OK);
  } catch {
    throw new Error(`kube-config-check ${version} is missing at ${bin}: run scripts/setup-kube-config-check.sh (it builds one per minor)`);
  }
  return bin;
}

async function check(bin: string, kind: string, file: string): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileP(bin, [kind, file]);
    return { code: 0, out: r.stdout };
  } catch (err: unknown) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, out: e.stderr ?? '' };
  }
}

const cases = supportedMinors.flatMap((minor) => (['worker', 'control-plane'] as const).map((role) => ({ minor, role, version: typesRelease[minor] ?? `none for ${minor}` })));

describe('rendered configs against the upstream types', () => {
  it.each(cases)('$minor $role decodes strictly with the $version types', async ({ minor, role, version }) => {
    const bin = await checker(version);
    // An older minor's goldens hold only the files that differ from the newest minor's (kubelet-matrix.test.ts).
    const newest = supportedMinors[supportedMinors.length - 1];
    const golden = async (rel: string): Promise<string> => {
      const own = path.join(goldens, `${minor}-${role}`, rel);
      return fsp.access(own).then(() => own, () => path.join(goldens, `${newest}-${role}`, rel));
    };
    for (const [kind, rel] of [
      ['kubelet', 'var/lib/kubelet/config.yaml'],
      ['kube-proxy', 'var/lib/kube-proxy/config.conf'],
      ['pod', 'etc/kubernetes/manifests/kube-proxy.yaml'],
    ] as const) {
      const r = await check(bin, kind, await golden(rel));
      expect(r, `${kind} ${rel}`).toEqual({ code: 0, out: 'ok\n' });
    }
  });

  it('the checker refuses a misspelled field (it can fail)', async () => {
    const bin = await checker(typesRelease['1.35'] as string);
    const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'kcc-'));
    try {
      const good = await fsp.readFile(path.join(goldens, '1.35-worker/var/lib/kubelet/config.yaml'), 'utf8');
      await fsp.writeFile(path.join(tmp, 'bad.yaml'), good.replace('maxPods:', 'maxPod:'));
      const r = await check(bin, 'kubelet', path.join(tmp, 'bad.yaml'));
      expect(r.code).toBe(1);
      expect(r.out).toContain('unknown field "maxPod"');
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  });
});
