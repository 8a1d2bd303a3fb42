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

/** Runs `nodeup <args>` from source; progress lines stream to this process's stdout. */
export async function nodeup(args: readonly string[], opts: { readonly echo?: boolean } = {}): Promise<CliResult> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(repo, 'src/agent/main.ts'), ...args], {
    cwd: repo,
    env: { ...process.env, NODEUP_LOG_LEVEL: process.env.NODEUP_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
