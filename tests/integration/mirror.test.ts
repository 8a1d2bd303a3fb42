// `nodeup mirror` (issue 20) with the real CLI, against local upstreams that play the internet: a
// loopback HTTP server plays the release sites (the NodeConfig's asset overrides point there, with
// the SHA-256 of the bytes it serves), and Debian's docker-registry plays registry.k8s.io. Proves:
// a first run stages every asset of both architectures at the path nodes read, verified, with a
// manifest; a second run downloads nothing; a run killed in the middle of a download leaves no
// partial file in the mirror, and the next run finishes it; bytes that do not match the pinned hash
// are refused (exit 1, nothing placed); with the upstream stopped, a node's verified download is
// served from the mirror alone; the images are copied into a registry (same digest) and into an OCI
// image layout. skopeo and docker-registry come from scripts/fixtures/apt-deps.sh.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeHost } from '../../src/engine/host/node-host.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { resolveAsset } from '../../src/model/assets/versions.ts';
import { makeTinyImage, pushWithSkopeo, startRegistry, type RegistryInstance } from './containerd-harness.ts';
import { freePort } from './process-util.ts';

const repo = path.resolve(import.meta.dirname, '..', '..');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Served {
  body: Buffer;
  /** Stream in small chunks, slowly (an interruption can land in the middle). */
  slow?: boolean;
  /** Serve these bytes instead (a tampered upstream). */
  corrupt?: Buffer;
}

let work = '';
let upstream: http.Server | undefined;
let upstreamUrl = '';
let slowStarted: () => void = () => undefined;
const served = new Map<string, Served>();
const requests: string[] = [];
/** The Range header of each request that had one: `<path> <range>`. */
const ranges: string[] = [];
let upReg: RegistryInstance | undefined;
let mirrorReg: RegistryInstance | undefined;

// One file per asset the worker downloads; containerd's is the big, slow one.
const assets: Record<string, { file: string; version: string; size: number }> = {
  kubelet: { file: 'kubelet', version: '1.35.1', size: 300_000 },
  kubectl: { file: 'kubectl', version: '1.35.1', size: 200_000 },
  containerd: { file: 'containerd-2.2.1-linux.tar.gz', version: '2.2.1', size: 6_000_000 },
  runc: { file: 'runc', version: '1.3.4', size: 100_000 },
  'cni-plugins': { file: 'cni-plugins-v1.8.0.tgz', version: '1.8.0', size: 150_000 },
  crictl: { file: 'crictl-v1.35.0-linux.tar.gz', version: '1.35.0', size: 120_000 },
};
const layoutPath = (name: string, arch: string): string => {
  const a = assets[name]!;
  return `${name}/${a.version}/linux-${arch}/${a.file}`;
};

function nodeConfig(): string {
  const overrides = Object.entries(assets)
    .map(([name, a]) => `      ${name}:\n        version: "${a.version}"\n        urls: ["${upstreamUrl}/releases/${a.file}"]\n        sha256: ${sha(served.get(`/releases/${a.file}`)!.body)}`)
    .join('\n');
  return `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: airgap, instanceGroup: nodes}
spec:
  role: worker
  kubernetesVersion: v1.35.1
  apiServerEndpoint: https://10.0.0.10:6443
  kubeProxy: {enabled: false}
  assets:
    overrides:
${overrides}
`;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function mirror(args: readonly string[], opts: { killWhenSlow?: boolean } = {}): Promise<Run> {
  const child = spawn(process.execPath, [path.join(repo, 'src/app/main.ts'), 'mirror', '--node-config', path.join(work, 'node.yaml'), '--log-format', 'json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (opts.killWhenSlow) slowStarted = () => void setTimeout(() => child.kill('SIGKILL'), 400);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : -2), stdout, stderr })));
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    () => false,
  );
}

describe('nodeup mirror: an air-gapped mirror from local upstreams', () => {
  const dir = (): string => path.join(work, 'mirror');

  beforeAll(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-mirror-'));
    for (const a of Object.values(assets)) served.set(`/releases/${a.file}`, { body: randomBytes(a.size), ...(a.size > 1_000_000 ? { slow: true } : {}) });
    upstream = http.createServer((req, res) => {
      const s = served.get(req.url ?? '');
      requests.push(req.url ?? '');
      if (!s) return void res.writeHead(404).end('not found');
      const full = s.corrupt ?? s.body;
      // Ranges as release sites and their CDNs serve them: 206 from the asked byte to the end.
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      if (m) ranges.push(`${req.url} ${req.headers.range}`);
      if (m && start >= full.length) return void res.writeHead(416, { 'content-range': `bytes */${full.length}` }).end();
      const body = full.subarray(start);
      res.writeHead(m ? 206 : 200, { 'content-length': String(body.length), ...(m ? { 'content-range': `bytes ${start}-${full.length - 1}/${full.length}` } : {}) });
      if (!s.slow) return void res.end(body);
      if (!m) slowStarted();
      let at = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        if (at >= body.length) return void res.end();
        res.write(body.subarray(at, at + 65_536));
        at += 65_536;
        setTimeout(tick, 15);
      };
      tick();
    });
    const port = await freePort();
    await new Promise<void>((r) => upstream!.listen(port, '127.0.0.1', r));
    upstreamUrl = `http://127.0.0.1:${port}`;
    await fsp.writeFile(path.join(work, 'node.yaml'), nodeConfig());

    // registry.k8s.io, played by a local registry holding the sandbox image the worker needs.
    [upReg, mirrorReg] = [await startRegistry(), await startRegistry()];
    const img = await makeTinyImage(path.join(work, 'img'), 'registry.k8s.io/pause:3.10.1');
    await pushWithSkopeo(img.layoutDir, 'registry.k8s.io/pause:3.10.1', `${upReg.hostPort}/pause:3.10.1`);
  }, 120_000);

  afterAll(async () => {
    await new Promise((r) => (upstream ? upstream.close(r) : r(undefined)));
    await upReg?.stop();
    await mirrorReg?.stop();
    await fsp.rm(work, { recursive: true, force: true });
  });

  const imageArgs = (): string[] => ['--image-source', `registry.k8s.io=${upReg!.hostPort}`, '--registry', mirrorReg!.hostPort, '--insecure-registry'];

  it('--list names every asset of both architectures, the images and the packages per distro, and stages nothing', async () => {
    const r = await mirror(['--list']);
    expect(r.code, r.stderr).toBe(0);
    for (const name of Object.keys(assets)) for (const arch of ['amd64', 'arm64']) expect(r.stdout).toContain(`  ${layoutPath(name, arch)}  sha256:`);
    expect(r.stdout).toMatch(/images \(1\):\n {2}registry\.k8s\.io\/pause:3\.10\.1\n/);
    expect(r.stdout).toMatch(/ {2}debian-12 \(apt\): .*ca-certificates/);
    expect(r.stdout).toMatch(/ {2}rocky-9 \(dnf\): .*container-selinux/);
    expect(requests).toEqual([]);
  });

  it('--image adds a workload image to those the configs name; a malformed one is a usage error', async () => {
    const r = await mirror(['--list', '--image', 'registry.k8s.io/e2e-test-images/agnhost:2.59', '--image', 'registry.k8s.io/pause:3.10.1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/images \(2\):\n {2}registry\.k8s\.io\/e2e-test-images\/agnhost:2\.59\n {2}registry\.k8s\.io\/pause:3\.10\.1\n/);
    const bad = await mirror(['--list', '--image', 'agnhost']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--image agnhost: expected REGISTRY/REPOSITORY[:TAG]');
  });

  it('a run killed in the middle of a download leaves no partial file in the mirror; the next run resumes it from the bytes kept, verified, with a manifest', async () => {
    const killed = await mirror(['--dir', dir(), ...imageArgs()], { killWhenSlow: true });
    expect(killed.code).toBe(-1);
    for (const arch of ['amd64', 'arm64']) expect(await exists(path.join(dir(), layoutPath('containerd', arch)))).toBe(false);
    const containerdSha = sha(served.get(`/releases/${assets.containerd!.file}`)!.body);
    const kept = (await fsp.stat(path.join(dir(), '.nodeup-staging/var/cache/nodeup/sha256', `${containerdSha}.partial`))).size;
    expect(kept, 'bytes of the stopped download kept in the staging area').toBeGreaterThan(0);
    expect(kept).toBeLessThan(6_000_000);

    const r = await mirror(['--dir', dir(), ...imageArgs()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const [name, a] of Object.entries(assets)) {
      for (const arch of ['amd64', 'arm64']) {
        const bytes = await fsp.readFile(path.join(dir(), layoutPath(name, arch)));
        expect(sha(bytes), layoutPath(name, arch)).toBe(sha(served.get(`/releases/${a.file}`)!.body));
      }
    }
    expect(await exists(path.join(dir(), '.nodeup-staging')), 'the staging area is gone').toBe(false);
    // The second run asked only for the rest of the stopped download (from at least the kept bytes:
    // the last write before the kill may have reached the disk after the stat above).
    const resumed = ranges.filter((x) => x.startsWith(`/releases/${assets.containerd!.file} `));
    expect(resumed).toHaveLength(1);
    expect(Number(/bytes=(\d+)-/.exec(resumed[0] ?? '')?.[1])).toBeGreaterThanOrEqual(kept);
    expect(r.stdout + r.stderr).toMatch(/resuming a download/);
    // One download per hash: the arm64 path of each override holds the amd64 path's bytes, linked.
    expect(r.stdout).toMatch(/files: 12 \(.* MB\): \d+ downloaded \(.* MB\), \d+ linked \(the same bytes as another path\), \d+ already there, 0 failed; images: 1: 1 copied, 0 failed/);
    const manifest = JSON.parse(await fsp.readFile(path.join(dir(), 'mirror-manifest.json'), 'utf8')) as { files: { path: string; sha256: string; bytes: number; status: string }[]; images: { status: string }[] };
    expect(manifest.files.map((f) => f.path).sort()).toEqual(Object.keys(assets).flatMap((n) => ['amd64', 'arm64'].map((a) => layoutPath(n, a))).sort());
    const containerd = manifest.files.filter((f) => f.path.startsWith('containerd/'));
    expect(containerd.map((f) => f.status).sort()).toEqual(['downloaded', 'linked']);
    expect(containerd.every((f) => f.bytes === 6_000_000)).toBe(true);
  }, 120_000);

  it('a second run downloads nothing: every file is re-hashed and kept', async () => {
    const before = requests.length;
    const r = await mirror(['--dir', dir(), ...imageArgs()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/files: 12 \(.* MB\): 0 downloaded \(0\.0 MB\), 0 linked \(the same bytes as another path\), 12 already there, 0 failed/);
    expect(requests.length).toBe(before);
  });

  it('bytes that do not match the pinned hash are refused: exit 1, the file stays out of the mirror', async () => {
    const kubelet = served.get('/releases/kubelet')!;
    kubelet.corrupt = randomBytes(kubelet.body.length);
    await fsp.rm(path.join(dir(), layoutPath('kubelet', 'amd64')));
    // A file someone changed in the mirror is fetched again (and refused again here).
    await fsp.writeFile(path.join(dir(), layoutPath('kubelet', 'arm64')), 'tampered');
    const r = await mirror(['--dir', dir(), '--no-images']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`failed .* ${layoutPath('kubelet', 'amd64').replace(/[.]/g, '\\.')} {2}-- checksum mismatch`));
    expect(r.stdout).toContain('2 failed (see above); run it again to retry them');
    for (const arch of ['amd64', 'arm64']) expect(await exists(path.join(dir(), layoutPath('kubelet', arch)))).toBe(false);
    delete kubelet.corrupt;
    expect((await mirror(['--dir', dir(), '--no-images'])).code).toBe(0);
  });

  it('with the upstream stopped, a node fetches its pinned asset from the mirror alone', async () => {
    await new Promise((r) => upstream!.close(r));
    upstream = undefined;
    const files = http.createServer((req, res) => {
      void fsp.readFile(path.join(dir(), decodeURIComponent(req.url ?? '/'))).then(
        (b) => res.writeHead(200).end(b),
        () => res.writeHead(404).end(),
      );
    });
    const port = await freePort();
    await new Promise<void>((r) => files.listen(port, '127.0.0.1', r));
    try {
      const a = assets.containerd!;
      const asset = resolveAsset({
        name: 'containerd',
        version: a.version,
        arch: 'arm64',
        mirrors: [`http://127.0.0.1:${port}`],
        override: { version: a.version, urls: [`${upstreamUrl}/releases/${a.file}`], sha256: sha(served.get(`/releases/${a.file}`)!.body) },
      });
      expect(asset.urls[0]).toBe(`http://127.0.0.1:${port}/${layoutPath('containerd', 'arm64')}`);
      const node = new NodeHost({ root: path.join(work, 'node'), log: silentLogger });
      const got = await node.fetchAsset({ ...asset, urls: [asset.urls[0]!, asset.urls[1]!] });
      expect(sha(await fsp.readFile(got))).toBe(asset.sha256);
    } finally {
      await new Promise((r) => files.close(r));
    }
  });

  it('the images are in the mirror registry under the same digest, and in an OCI image layout', async () => {
    const digest = async (hostPort: string): Promise<string | null> => {
      const res = await fetch(`http://${hostPort}/v2/pause/manifests/3.10.1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' } });
      return res.ok ? res.headers.get('docker-content-digest') : null;
    };
    expect(await digest(mirrorReg!.hostPort)).toBe(await digest(upReg!.hostPort));
    expect(await digest(mirrorReg!.hostPort)).toMatch(/^sha256:[0-9a-f]{64}$/);
    const layout = path.join(work, 'oci');
    const r = await mirror(['--dir', dir(), '--image-source', `registry.k8s.io=${upReg!.hostPort}`, '--oci-layout', layout]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const index = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toContain('registry.k8s.io/pause:3.10.1');
  });
});
