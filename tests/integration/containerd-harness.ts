// Real containerd processes for the integration tests: Debian's 1.6 (config schema 2) and a 2.x
// built from the Go module proxy (schema 3). Each runs with a PRIVATE root, state, socket, drop-in
// dir, certs.d and CNI dir under a temp dir, from a config rendered by nodeup's own renderer (only
// those paths are renderer inputs changed for the private instance). Stopped by pid: SIGTERM, then
// SIGKILL after a timeout. Also: a tiny image written by hand (OCI layout, OCI and docker archives)
// and a real registry (Debian's docker-registry) on 127.0.0.1.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './process-util.ts';
import { createHash } from 'node:crypto';
import { existsSync, openSync, closeSync, readdirSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { renderContainerdConfig, type ContainerdConfigInput } from '../../src/containerd/render-config.ts';

const execFileP = promisify(execFile);
const cacheDir = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');

export interface ContainerdBinaries {
  readonly label: string;
  /** The version containerd reports, e.g. 1.6.20 or 2.2.9: picks the config schema. */
  readonly version: string;
  readonly binDir: string;
  readonly containerd: string;
  readonly ctr: string;
}

async function versionOf(containerd: string): Promise<string> {
  const { stdout } = await execFileP(containerd, ['--version']);
  const m = /\sv?(\d+\.\d+\.\d+)/.exec(stdout);
  if (!m?.[1]) throw new Error(`cannot read the version of ${containerd} from: ${stdout.trim()}`);
  return m[1];
}

/** Debian's containerd 1.6. Fails loudly, naming the setup script, when missing. */
export async function debianContainerd(): Promise<ContainerdBinaries> {
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/ctr') || !existsSync('/usr/sbin/runc')) {
    throw new Error("Debian's containerd 1.6 and runc are missing (/usr/bin/containerd, /usr/bin/ctr, /usr/sbin/runc): run scripts/fixtures/apt-deps.sh (or scripts/setup.sh)");
  }
  const version = await versionOf('/usr/bin/containerd');
  return { label: `containerd ${version} (Debian)`, version, binDir: '/usr/bin', containerd: '/usr/bin/containerd', ctr: '/usr/bin/ctr' };
}

function fixtureBin(prefix: string, script: string): string {
  const fx = path.join(cacheDir, 'fixtures');
  const dir = existsSync(fx) ? readdirSync(fx).filter((d) => d.startsWith(`${prefix}-`) && existsSync(path.join(fx, d, '.ok'))).sort().pop() : undefined;
  if (!dir) throw new Error(`${prefix} is not built under ${fx}/${prefix}-*/: run ${script} (or scripts/setup.sh)`);
  return path.join(fx, dir, 'bin');
}

/** containerd 2.x built from the Go module proxy by scripts/fixtures/build.sh containerd2. */
export async function containerd2(): Promise<ContainerdBinaries> {
  const bin = fixtureBin('containerd2', 'scripts/fixtures/build.sh containerd2');
  const version = await versionOf(path.join(bin, 'containerd'));
  return { label: `containerd ${version} (Go module proxy build)`, version, binDir: bin, containerd: path.join(bin, 'containerd'), ctr: path.join(bin, 'ctr') };
}

/** crictl built from the Go module proxy by scripts/fixtures/build.sh crictl. */
export function crictlBinary(): string {
  const p = path.join(fixtureBin('crictl', 'scripts/fixtures/build.sh crictl'), 'crictl');
  if (!existsSync(p)) throw new Error(`${p} is missing although its fixture is marked built: remove its folder and run scripts/fixtures/build.sh crictl`);
  return p;
}

export interface ContainerdInstance {
  readonly dir: string;
  readonly socket: string;
  readonly configPath: string;
  readonly dropInDir: string;
  readonly certsDir: string;
  readonly bins: ContainerdBinaries;
  readonly proc: ChildProcess;
  readonly logFile: string;
  ctr(args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

/** The node config's input with every path moved under `dir` (a private instance). */
export function privateInput(input: ContainerdConfigInput, dir: string, version: string): ContainerdConfigInput {
  return {
    ...input,
    version,
    root: path.join(dir, 'root'),
    state: path.join(dir, 'state'),
    address: path.join(dir, 'containerd.sock'),
    imports: [path.join(dir, 'conf.d', '*.toml')],
    certsDir: path.join(dir, 'certs.d'),
    cniConfDir: path.join(dir, 'net.d'),
    ...(input.cniConfTemplate !== undefined ? { cniConfTemplate: path.join(dir, path.basename(input.cniConfTemplate)) } : {}),
  };
}

export interface StartOptions {
  readonly bins: ContainerdBinaries;
  readonly input: ContainerdConfigInput;
  /** Files to put under the private dir before starting (e.g. conf.d/50-x.toml, certs.d/<r>/hosts.toml, the CNI template by its base name). */
  readonly files?: Readonly<Record<string, string>>;
  readonly startTimeoutMs?: number;
}

async function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Unmounts anything containerd left mounted under dir (deepest first). */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await fsp.readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await execFileP('umount', ['-l', m]).catch(() => undefined);
}

export async function startContainerd(opts: StartOptions): Promise<ContainerdInstance> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-ctd-'));
  const input = privateInput(opts.input, dir, opts.bins.version);
  for (const d of ['conf.d', 'certs.d', 'net.d']) await fsp.mkdir(path.join(dir, d), { recursive: true });
  for (const [rel, content] of Object.entries(opts.files ?? {})) {
    await fsp.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fsp.writeFile(path.join(dir, rel), content);
  }
  const configPath = path.join(dir, 'config.toml');
  await fsp.writeFile(configPath, renderContainerdConfig(input));
  const logFile = path.join(dir, 'containerd.log');
  const fd = openSync(logFile, 'a');
  const env = { ...process.env, PATH: `${opts.bins.binDir}:/usr/sbin:/usr/bin:/sbin:/bin` };
  const proc = spawn(opts.bins.containerd, ['--config', configPath], { stdio: ['ignore', fd, fd], env });
  closeSync(fd);
  const socket = input.address;
  const ctr = async (args: readonly string[]): Promise<string> => {
    const { stdout } = await execFileP(opts.bins.ctr, ['--address', socket, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  };
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      if (!(await waitExit(proc, 15_000))) {
        proc.kill('SIGKILL');
        await waitExit(proc, 5_000);
      }
    }
    await unmountUnder(dir);
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const log = await fsp.readFile(logFile, 'utf8').catch(() => '');
      await stop();
      throw new Error(`${opts.bins.label} exited (${proc.exitCode ?? proc.signalCode}) with nodeup's config:\n${log.split('\n').slice(-25).join('\n')}`);
    }
    try {
      await ctr(['version']);
      break;
    } catch {
      if (Date.now() > deadline) {
        const log = await fsp.readFile(logFile, 'utf8').catch(() => '');
        await stop();
        throw new Error(`${opts.bins.label} did not answer on ${socket} within the timeout:\n${log.split('\n').slice(-25).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return { dir, socket, configPath, dropInDir: path.join(dir, 'conf.d'), certsDir: path.join(dir, 'certs.d'), bins: opts.bins, proc, logFile, ctr, stop };
}

// ---- a tiny image, written by hand ----

export interface TinyImage {
  /** An OCI image layout directory (for skopeo). */
  readonly layoutDir: string;
  /** The manifest's digest ("sha256:..."): what containerd lists for the image. */
  readonly manifestDigest: string;
  readonly ociArchive: string;
  readonly dockerArchive: string;
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** One layer holding /hello.txt; `ref` is the full name the OCI index and docker RepoTags carry. */
export async function makeTinyImage(dir: string, ref: string, text = 'hello from nodeup\n'): Promise<TinyImage> {
  await fsp.mkdir(dir, { recursive: true });
  const src = path.join(dir, 'rootfs');
  await fsp.mkdir(src, { recursive: true });
  await fsp.writeFile(path.join(src, 'hello.txt'), text);
  const layerFile = path.join(dir, 'layer.tar');
  await tar.c({ file: layerFile, cwd: src, portable: true, mtime: new Date(0) }, ['hello.txt']);
  const layer = await fsp.readFile(layerFile);
  const layerHex = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      os: 'linux',
      config: { Cmd: ['/hello.txt'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
      history: [{ created_by: 'nodeup integration test' }],
    }),
  );
  const configHex = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configHex}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerHex}`, size: layer.length }],
    }),
  );
  const manifestHex = sha256(manifest);
  // OCI layout
  const layoutDir = path.join(dir, 'oci');
  const blobs = path.join(layoutDir, 'blobs', 'sha256');
  await fsp.mkdir(blobs, { recursive: true });
  await fsp.writeFile(path.join(blobs, layerHex), layer);
  await fsp.writeFile(path.join(blobs, configHex), config);
  await fsp.writeFile(path.join(blobs, manifestHex), manifest);
  await fsp.writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fsp.writeFile(
    path.join(layoutDir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${manifestHex}`,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': ref },
        },
      ],
    }),
  );
  const ociArchive = path.join(dir, 'tiny-oci.tar');
  await tar.c({ file: ociArchive, cwd: layoutDir, portable: true }, ['oci-layout', 'index.json', 'blobs']);
  // docker archive (docker save format)
  const dockerDir = path.join(dir, 'docker');
  await fsp.mkdir(path.join(dockerDir, layerHex), { recursive: true });
  await fsp.writeFile(path.join(dockerDir, layerHex, 'layer.tar'), layer);
  await fsp.writeFile(path.join(dockerDir, `${configHex}.json`), config);
  await fsp.writeFile(path.join(dockerDir, 'manifest.json'), JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [ref], Layers: [`${layerHex}/layer.tar`] }]));
  const dockerArchive = path.join(dir, 'tiny-docker.tar');
  await tar.c({ file: dockerArchive, cwd: dockerDir, portable: true }, ['manifest.json', `${configHex}.json`, layerHex]);
  return { layoutDir, manifestDigest: `sha256:${manifestHex}`, ociArchive, dockerArchive };
}

// ---- a real registry on loopback ----

export { freePort };

export interface RegistryInstance {
  readonly url: string;
  readonly hostPort: string;
  stop(): Promise<void>;
}

/** Debian's docker-registry 2.8 serving a temp dir on 127.0.0.1. */
export async function startRegistry(): Promise<RegistryInstance> {
  if (!existsSync('/usr/bin/docker-registry')) {
    throw new Error("Debian's docker-registry is missing (/usr/bin/docker-registry): run scripts/fixtures/apt-deps.sh (or scripts/setup.sh)");
  }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-registry-'));
  const port = await freePort();
  const cfg = path.join(dir, 'config.yml');
  await fsp.writeFile(
    cfg,
    ['version: 0.1', 'log: { level: warn }', 'storage:', `  filesystem: { rootdirectory: ${path.join(dir, 'data')} }`, 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  const fd = openSync(path.join(dir, 'registry.log'), 'a');
  const proc = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      if (!(await waitExit(proc, 10_000))) {
        proc.kill('SIGKILL');
        await waitExit(proc, 5_000);
      }
    }
    await fsp.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/v2/`);
      if (res.status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || proc.exitCode !== null) {
      const log = await fsp.readFile(path.join(dir, 'registry.log'), 'utf8').catch(() => '');
      await stop();
      throw new Error(`docker-registry did not answer on ${url}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, hostPort: `127.0.0.1:${port}`, stop };
}

/** Pushes an OCI layout's image to a registry with skopeo (plain HTTP on loopback). */
export async function pushWithSkopeo(layoutDir: string, ref: string, dest: string): Promise<void> {
  if (!existsSync('/usr/bin/skopeo')) throw new Error('skopeo is missing: run scripts/fixtures/apt-deps.sh (or scripts/setup.sh)');
  await execFileP('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layoutDir}:${ref}`, `docker://${dest}`]);
}
