// Shared helpers of the VM suites: find the fixtures scripts/vm/setup.sh makes, run `nodeup launch`
// (the real CLI, from source, on this machine's Node 24), and print the guest's serial log tail and
// nodeup's receipt when a scenario fails. Set NODEUP_KEEP_VMS=1 to keep the guests afterwards.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

export const repo = path.resolve(import.meta.dirname, '..', '..');
export const cacheDir = process.env.NODEUP_CACHE ?? path.join(os.homedir(), '.cache', 'nodeup');
export const baseImage = path.join(cacheDir, 'vm', 'base-current');
export const binary = process.env.NODEUP_VM_BINARY ?? path.join(repo, 'dist', 'nodeup-linux-amd64');
export const keepVms = process.env.NODEUP_KEEP_VMS === '1';

/** Fails (never skips) when a fixture is missing, naming the script that makes it. */
export function requireFixtures(): void {
  const missing: string[] = [];
  if (!existsSync(path.join(baseImage, '.ok'))) missing.push(`base guest image (${baseImage})`);
  if (!existsSync(binary)) missing.push(`nodeup binary (${binary})`);
  if (missing.length > 0) {
    throw new Error(`VM fixtures missing: ${missing.join(', ')}. Run: bash scripts/vm/setup.sh`);
  }
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs a program, its stdout streamed to this process's stdout (unless echo is false) and kept. */
export async function runStreaming(
  file: string,
  args: readonly string[],
  opts: { readonly echo?: boolean; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {},
): Promise<CliResult> {
  const t0 = Date.now();
  const child = spawn(file, args, { cwd: repo, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (opts.echo !== false) process.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  return { code, stdout, stderr, seconds: (Date.now() - t0) / 1000 };
}

/** Runs `nodeup <args>` from source; progress lines stream to this process's stdout. */
export async function nodeup(args: readonly string[], opts: { readonly echo?: boolean } = {}): Promise<CliResult> {
  return runStreaming(process.execPath, [path.join(repo, 'src/app/main.ts'), ...args], {
    ...opts,
    env: { ...process.env, NODEUP_LOG_LEVEL: process.env.NODEUP_LOG_LEVEL ?? 'warn' },
  });
}

/** What a failed scenario prints: the guest's serial log tail, its receipt, launch's stderr. */
export async function diagnose(stateDir: string, name: string, res?: CliResult): Promise<string> {
  const dir = path.join(stateDir, name);
  const serial = await fsp.readFile(path.join(dir, 'serial.log'), 'utf8').catch(() => '(no serial log)');
  const receipt = await fsp.readFile(path.join(dir, 'receipt.json'), 'utf8').catch(() => '(no receipt arrived)');
  const events = await fsp.readFile(path.join(dir, 'events.jsonl'), 'utf8').catch(() => '(no events)');
  return [
    `===== ${name}: serial log tail (${path.join(dir, 'serial.log')}) =====`,
    serial.split('\n').slice(-80).join('\n'),
    `===== ${name}: events =====`,
    events,
    `===== ${name}: receipt =====`,
    receipt,
    ...(res ? [`===== nodeup launch stderr (exit ${res.code}) =====`, res.stderr.split('\n').slice(-40).join('\n')] : []),
  ].join('\n');
}

export interface Timings {
  readonly accel?: string;
  readonly launchedAtMs: number;
  readonly bootedAtMs?: number;
  readonly bootedUptimeS?: number;
  readonly startedAtMs?: number;
  readonly startedUptimeS?: number;
  readonly receiptAtMs?: number;
  readonly nodeupMs?: number;
}

export async function readTimings(stateDir: string, name: string): Promise<Timings> {
  return JSON.parse(await fsp.readFile(path.join(stateDir, name, 'timings.json'), 'utf8')) as Timings;
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** The docker-registry storage scripts/vm/images.sh fills (images.env beside storage/). */
export const registryStorage = path.join(cacheDir, 'vm', 'registry-current');

export interface RunningRegistry {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Serves a registry storage with Debian's docker-registry on 127.0.0.1 (guests: 10.0.2.2:<port>). */
/** docker-registry on 127.0.0.1 over `storage`: read-only (the images scripts/vm/images.sh built), or writable (a mirror to push into). */
export async function serveRegistry(storage: string, opts: { readonly writable?: boolean } = {}): Promise<RunningRegistry> {
  if (!existsSync('/usr/bin/docker-registry')) throw new Error('docker-registry is missing: run scripts/fixtures/apt-deps.sh (or bash scripts/vm/setup.sh)');
  const net = await import('node:net');
  const port = await new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as import('node:net').AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const dir = await tempDir('nodeup-registry-');
  const config = path.join(dir, 'registry.yml');
  await fsp.writeFile(config, `version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: ${storage}}, maintenance: {readonly: {enabled: ${opts.writable ? 'false' : 'true'}}}}\nhttp: {addr: 127.0.0.1:${port}}\n`);
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${url}/v2/`).then((r) => r.ok, () => false)) break;
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!(await fetch(`${url}/v2/`).then((r) => r.ok, () => false))) throw new Error(`docker-registry did not answer on ${url}: ${stderr.slice(-500)}`);
  return {
    url,
    port,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
