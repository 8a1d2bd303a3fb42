// Issue 19, item 1, with real processes: two `nodeup apply` processes (the agent's own CLI) on one
// node root at the same time. The state store is an http:// store on 127.0.0.1 that answers the
// NodeConfig only after 3 s, so the first run still holds the lock when the second starts. The
// second waits (its log names the first's pid), then runs on a converged node: nothing is
// written twice, and each run's report and the receipt say what that run did. A third run with
// --no-wait while the first holds the lock stops at once (exit 1), naming the holder, and writes
// no receipt. The last run's metrics are in the default textfile-collector file.
import { spawn } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configHash } from '../../src/model/config.ts';
import { freePort } from './process-util.ts';

const repo = path.resolve(import.meta.dirname, '..', '..');
const nodeConfig = `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: lock, instanceGroup: nodes}
spec:
  role: worker
  apiServerEndpoint: https://10.0.0.10:6443
  files:
    - path: /etc/nodeup-lock/a.conf
      content: "a\\n"
    - path: /etc/nodeup-lock/b.conf
      content: "b\\n"
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  startedAt: number;
  endedAt: number;
}

let work = '';
let server: http.Server | undefined;
let port = 0;
const delayMs = 3000;

function apply(extra: readonly string[] = []): { pid: number; done: Promise<Run> } {
  const startedAt = Date.now();
  const child = spawn(
    process.execPath,
    [path.join(repo, 'src/app/main.ts'), 'apply', '--config', path.join(work, 'boot.yaml'), '--root', path.join(work, 'root'), '--only', 'node-files', '--log-format', 'json', '--json', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODEUP_LOG_LEVEL: 'info' } },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, startedAt, endedAt: Date.now() })));
  return { pid: child.pid ?? 0, done };
}

describe('one nodeup run at a time on a node (two real processes)', () => {
  beforeAll(async () => {
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-runlock-'));
    await fsp.mkdir(path.join(work, 'root/etc'), { recursive: true });
    await fsp.writeFile(path.join(work, 'root/etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
    port = await freePort();
    server = http.createServer((req, res) => {
      if (req.url === '/store/igconfig/nodes/node.yaml') {
        setTimeout(() => res.end(nodeConfig), delayMs);
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server?.listen(port, '127.0.0.1', r));
    await fsp.writeFile(
      path.join(work, 'boot.yaml'),
      [
        'apiVersion: nodeup.dev/v1alpha1',
        'kind: BootConfig',
        `stateStore: http://127.0.0.1:${port}/store`,
        'clusterName: lock',
        'instanceGroup: nodes',
        `nodeConfigHash: ${configHash(nodeConfig)}`,
        'nodeName: lock-node',
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  it('the second apply waits for the first, then changes nothing; --no-wait stops at once naming the holder', async () => {
    const first = apply();
    // The first takes the lock before it reads the store (3 s): give it a moment to start.
    const lockDir = path.join(work, 'root/run/nodeup/apply.lock');
    for (let i = 0; i < 100; i++) {
      if (await fsp.stat(`${lockDir}.json`).catch(() => undefined)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const holder = JSON.parse(await fsp.readFile(`${lockDir}.json`, 'utf8')) as { pid: number; mode: string; command: string };
    expect(holder).toMatchObject({ pid: first.pid, mode: 'apply' });
    expect(holder.command).toMatch(/^nodeup apply --config /);

    const second = apply();
    const third = await apply(['--no-wait']).done;
    expect(third.code, third.stderr).toBe(1);
    expect(third.stderr).toContain(`nodeup apply: another nodeup run is converging this node (pid ${first.pid}, apply (\`nodeup apply --config`);
    expect(third.endedAt - third.startedAt, 'the --no-wait run does not wait for the holder').toBeLessThan(delayMs + 5000);

    const [a, b] = await Promise.all([first.done, second.done]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const reportA = JSON.parse(a.stdout) as { changed: number };
    const reportB = JSON.parse(b.stdout) as { changed: number };
    expect(reportA.changed, 'the first run writes the two files').toBe(2);
    expect(reportB.changed, 'the second, after it, finds them in place').toBe(0);
    // The second waited: its log names the first as the holder, and it ended after the first.
    const waiting = b.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; holder?: string }).find((m) => m.msg === 'waiting for another nodeup run to finish');
    expect(waiting?.holder).toMatch(new RegExp(`^pid ${first.pid}, apply`));
    expect(b.endedAt).toBeGreaterThan(a.endedAt);
    expect(b.endedAt - b.startedAt, 'it read the store only after the first had finished').toBeGreaterThanOrEqual(2 * delayMs - 1000);

    const receipt = JSON.parse(await fsp.readFile(path.join(work, 'root/var/lib/nodeup/status.json'), 'utf8')) as { result: string; tasks: { status: string }[] };
    expect(receipt.result).toBe('converged');
    expect(receipt.tasks.filter((t) => t.status !== 'unchanged'), 'the receipt on the node is the last run\'s: 0 changes').toEqual([]);
    expect(await fsp.readFile(path.join(work, 'root/etc/nodeup-lock/a.conf'), 'utf8')).toBe('a\n');
    await expect(fsp.stat(lockDir), 'released').rejects.toThrow();

    // Issue 19, item 6: the CLI's default metrics file (node_exporter's textfile collector directory
    // on Debian and Ubuntu) holds the last run: converged, 0 changed, 2 unchanged; 0644.
    const prom = path.join(work, 'root/var/lib/prometheus/node-exporter/nodeup.prom');
    const text = await fsp.readFile(prom, 'utf8');
    expect(text).toContain('nodeup_last_run_success{mode="apply"} 1\n');
    expect(text).toContain('nodeup_last_run_tasks{mode="apply",status="changed"} 0\n');
    expect(text).toContain('nodeup_last_run_tasks{mode="apply",status="unchanged"} 2\n');
    expect(text).toContain('nodeup_last_run_component_tasks{mode="apply",component="node-files",status="unchanged"} 2\n');
    expect((await fsp.stat(prom)).mode & 0o777).toBe(0o644);
    expect((await fsp.readdir(path.dirname(prom))).filter((f) => f !== 'nodeup.prom'), 'no temporary file left beside it').toEqual([]);
  });
});
