// A real temp-root host for unit tests: real files (rename, modes, symlinks), scripted commands,
// and a record of every command run. Downloads go through the real code path (use file:// URLs or
// an undici MockAgent with net connect disabled).
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentError } from '../../src/engine/errors.ts';
import type { Logger } from '../../src/engine/log.ts';
import type { HostFacts } from '../../src/engine/host/facts.ts';
import type { HttpRequest, HttpResponse, RunOptions, RunResult } from '../../src/engine/host/host.ts';
import { NodeHost } from '../../src/engine/host/node-host.ts';

export interface ScriptedCommand {
  /** Matches when the command line (argv joined by spaces) equals this string, or matches this regex. */
  readonly match: string | RegExp;
  readonly exitCode?: number;
  readonly stdout?: string;
  readonly stderr?: string;
  /** Side effects, such as creating the files a package install would create. */
  readonly effect?: (host: TestHost, argv: readonly string[]) => Promise<void> | void;
  /** Answer at most this many times (then later entries are tried). */
  readonly times?: number;
}

export interface TestHostOptions {
  /** A fixture root under tests/fixtures/roots (e.g. "debian-12"), copied into the temp root. */
  readonly fixture?: string;
  readonly commands?: readonly ScriptedCommand[];
  /** Answer for commands no script entry matches; default: fail the test with a clear message. */
  readonly unmatched?: 'fail' | 'succeed';
  readonly http?: (req: HttpRequest) => Promise<HttpResponse> | HttpResponse;
  readonly log?: Logger;
}

const fixturesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/roots');

export class TestHost extends NodeHost {
  private readonly script: { cmd: ScriptedCommand; used: number }[];
  private readonly unmatched: 'fail' | 'succeed';
  private readonly httpHandler: TestHostOptions['http'];
  private readonly calls: string[] = [];
  virtualTime = 0;

  constructor(root: string, opts: TestHostOptions) {
    super({ root, ...(opts.log ? { log: opts.log } : {}), retryBaseMs: 1 });
    this.script = (opts.commands ?? []).map((cmd) => ({ cmd, used: 0 }));
    this.unmatched = opts.unmatched ?? 'fail';
    this.httpHandler = opts.http;
  }

  /** Adds answers for commands at any point in a test. */
  script_(cmds: readonly ScriptedCommand[]): void {
    for (const cmd of cmds) this.script.push({ cmd, used: 0 });
  }

  commandLog(): readonly string[] {
    return [...this.calls];
  }

  clearLog(): void {
    this.calls.length = 0;
  }

  override async run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const argv = [file, ...args];
    const line = argv.join(' ');
    this.calls.push(line);
    const entry = this.script.find(
      ({ cmd, used }) =>
        (cmd.times === undefined || used < cmd.times) &&
        (typeof cmd.match === 'string' ? cmd.match === line : cmd.match.test(line)),
    );
    if (!entry) {
      if (this.unmatched === 'succeed') return { exitCode: 0, stdout: '', stderr: '' };
      throw new AgentError('COMMAND_FAILED', `test host: no scripted answer for: ${line}`, { details: { argv } });
    }
    entry.used++;
    await entry.cmd.effect?.(this, argv);
    const exitCode = entry.cmd.exitCode ?? 0;
    const result = { exitCode, stdout: entry.cmd.stdout ?? '', stderr: entry.cmd.stderr ?? '' };
    for (const l of result.stdout.split('\n')) if (l) opts.onLine?.(l, 'stdout');
    if (exitCode !== 0 && !(opts.okExitCodes ?? []).includes(exitCode)) {
      throw new AgentError('COMMAND_FAILED', `${file} exited with ${exitCode}`, {
        details: { argv, exitCode, stderrTail: result.stderr },
      });
    }
    return result;
  }

  /** In tests the root is a temp dir, but commands are recorded as the node would run them. */
  override runInRoot(file: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return this.run(file, args, opts);
  }

  override async http(req: HttpRequest): Promise<HttpResponse> {
    if (!this.httpHandler) return super.http(req);
    return this.httpHandler(req);
  }

  override async sleep(ms: number): Promise<void> {
    this.virtualTime += ms;
    await new Promise((r) => setImmediate(r));
  }

  override now(): number {
    return Date.now() + this.virtualTime;
  }

  /** Every regular file and symlink under the root, relative, sorted: for tree goldens. */
  async tree(): Promise<readonly string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const name of (await fsp.readdir(dir)).sort()) {
        const full = path.join(dir, name);
        const st = await fsp.lstat(full);
        if (st.isDirectory()) await walk(full);
        else out.push(path.relative(this.root, full));
      }
    };
    await walk(this.root);
    return out;
  }

  async dispose(): Promise<void> {
    await fsp.rm(this.root, { recursive: true, force: true });
  }
}

export async function createTestHost(opts: TestHostOptions = {}): Promise<TestHost> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-test-'));
  if (opts.fixture) await fsp.cp(path.join(fixturesDir, opts.fixture), root, { recursive: true });
  return new TestHost(root, opts);
}

/** Facts for tests: a fixed, plausible machine. */
export function testFacts(overrides: Partial<HostFacts> = {}): HostFacts {
  // Addresses overridden alone stay consistent: they sit on eth0, which holds the default route.
  const ipv4 = overrides.ipv4 ?? ['10.0.0.10'];
  return {
    osRelease: { id: 'debian', idLike: [], versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    arch: 'amd64',
    hostname: 'node-a',
    ipv4,
    interfaces: { eth0: ipv4 },
    defaultRouteInterface: 'eth0',
    cgroupVersion: 2,
    memoryBytes: 4 * 1024 ** 3,
    cpus: 2,
    kernel: '6.1.0-test',
    swapBytes: 0,
    ...overrides,
  };
}
