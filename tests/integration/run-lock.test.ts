// Issue 19, item 1, with real processes: two `nodeup apply` processes (the agent's own CLI) on one
// node root at the same time. The state store is an http:// store on 127.0.0.1 that answers the
// NodeConfig only after 3 s, so the first run still holds the lock when the second starts. The
// second waits (its log names the first's pid), then runs on a converged node: nothing is
// written twice, and each run's report and the receipt say what that run did. A third run with
// --no-wait while the first holds the lock stops at once (exit 1), naming the holder, and writes
// no receipt. The last run's metrics are in the default textfile-collector file.
// Issue 19, item 4, through the same CLI: `apply --rollback-on-failure` with a config that fails
// exits 3 (nodeup.service's RestartPreventExitStatus) after converging back to the last good
// config, and `nodeup rollback` converges to it without the store.
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

describe('a config that fails, rolled back by the real CLI (exit 3) and by nodeup rollback', () => {
  let dir = '';
  const okConfig = nodeConfig;
  // Its second file cannot be written: its parent is the first config's file a.conf.
  const badConfig = nodeConfig.replace('/etc/nodeup-lock/b.conf', '/etc/nodeup-lock/a.conf/sub.conf').replace('"b\\n"', '"broken\\n"');

  async function publish(config: string): Promise<string> {
    await fsp.mkdir(path.join(dir, 'store/igconfig/nodes'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'store/igconfig/nodes/node.yaml'), config);
    const boot = path.join(dir, `boot-${configHash(config).slice(0, 12)}.yaml`);
    await fsp.writeFile(boot, ['apiVersion: nodeup.dev/v1alpha1', 'kind: BootConfig', `stateStore: file://${path.join(dir, 'store')}`, 'clusterName: lock', 'instanceGroup: nodes', `nodeConfigHash: ${configHash(config)}`, 'nodeName: lock-node', ''].join('\n'));
    return boot;
  }
  function cli(args: readonly string[]): Promise<Run> {
    const startedAt = Date.now();
    const child = spawn(process.execPath, [path.join(repo, 'src/app/main.ts'), ...args, '--root', path.join(dir, 'root'), '--only', 'node-files', '--log-format', 'json', '--metrics-file', ''], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<Run>((resolve) => child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, startedAt, endedAt: Date.now() })));
  }
  const receipt = async (): Promise<{ result: string; configHash: string; rolledBackFrom?: string; rolledBackTo?: string; rollbackReason?: string }> =>
    JSON.parse(await fsp.readFile(path.join(dir, 'root/var/lib/nodeup/status.json'), 'utf8')) as never;

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-rollback-'));
    await fsp.mkdir(path.join(dir, 'root/etc'), { recursive: true });
    await fsp.writeFile(path.join(dir, 'root/etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
  });
  afterAll(async () => {
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it('apply --rollback-on-failure exits 3 with the node back on its last good config; rollback converges to it without the store', async () => {
    const okBoot = await publish(okConfig);
    const good = await cli(['apply', '--config', okBoot]);
    expect(good.code, good.stderr).toBe(0);
    // Only a whole apply (every component: packages, downloads...) keeps its config as the last
    // good one, and this root cannot take one: put it where such a run leaves it.
    await fsp.mkdir(path.join(dir, 'root/var/lib/nodeup/last-good'), { recursive: true, mode: 0o700 });
    await fsp.writeFile(path.join(dir, 'root/var/lib/nodeup/last-good/node.yaml'), okConfig, { mode: 0o600 });
    const record = { configHash: configHash(okConfig), convergedAt: new Date().toISOString(), source: 'test' };
    await fsp.writeFile(path.join(dir, 'root/var/lib/nodeup/last-good/record.json'), JSON.stringify(record), { mode: 0o600 });

    const badBoot = await publish(badConfig);
    const plain = await cli(['apply', '--config', badBoot]);
    expect(plain.code, 'without the flag the failure stands').toBe(1);
    expect((await receipt()).result).toBe('failed');

    const rolled = await cli(['apply', '--config', badBoot, '--rollback-on-failure']);
    expect(rolled.code, rolled.stderr).toBe(3);
    expect(rolled.stderr).toContain(`nodeup apply: the config ${configHash(badConfig)} failed (tasks failed: file:/etc/nodeup-lock/a.conf/sub.conf: `);
    expect(rolled.stderr).toContain(`the node was rolled back to its last good config ${configHash(okConfig)} and converged`);
    expect(await receipt()).toMatchObject({ result: 'converged', configHash: configHash(okConfig), rolledBackFrom: configHash(badConfig), rolledBackTo: configHash(okConfig) });
    expect(await fsp.readFile(path.join(dir, 'root/etc/nodeup-lock/a.conf'), 'utf8')).toBe('a\n');

    // The store is gone: rollback needs only what the node kept.
    await fsp.rm(path.join(dir, 'store'), { recursive: true });
    await fsp.rm(path.join(dir, 'root/etc/nodeup-lock/b.conf'));
    const back = await cli(['rollback', '--config', badBoot]);
    expect(back.code, back.stderr).toBe(0);
    expect(await fsp.readFile(path.join(dir, 'root/etc/nodeup-lock/b.conf'), 'utf8'), 'rollback wrote the last good config\'s file again').toBe('b\n');
    expect(await receipt()).toMatchObject({ result: 'converged', configHash: configHash(okConfig), rolledBackTo: configHash(okConfig) });

    // A kept config changed by hand is refused, naming the file (exit 2).
    await fsp.appendFile(path.join(dir, 'root/var/lib/nodeup/last-good/node.yaml'), '# edited\n');
    const edited = await cli(['rollback', '--config', badBoot]);
    expect(edited.code).toBe(2);
    expect(edited.stderr).toContain('/var/lib/nodeup/last-good/node.yaml does not match the hash in /var/lib/nodeup/last-good/record.json');
  });
});
