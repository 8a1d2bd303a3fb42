// `nodeup ssh apply` against real OpenSSH servers (Debian's openssh-server) that the test starts on
// 127.0.0.1 with a temp host key and an authorized key for root. The "nodeup" uploaded is a
// stand-in shell script that records its arguments, can hold the lock window open, and fails on
// purpose for one server, so the lock, the upload-only-when-changed rule, the rollout stop and the
// bastion path are all exercised end to end through ssh2.
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/app/cli.ts';
import { silentLogger } from '../../src/engine/log.ts';
import { sshCommand } from '../../src/ssh/command.ts';

const setup = 'scripts/boot-paths-deps.sh';
const sshd = '/usr/sbin/sshd';

let dir: string;
type Sshd = { port: number; proc: ReturnType<typeof spawnSshd>; exited: boolean };
const servers: Sshd[] = [];
const spawnSshd = (conf: string) => execa(sshd, ['-D', '-e', '-f', conf], { reject: false });
let remote: string;
let standIn: string;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitForPort(port: number, server: Sshd): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (server.exited) throw new Error(`sshd on ${port} exited early`);
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port}`);
}

async function startSshd(name: string): Promise<number> {
  const port = await freePort();
  const conf = path.join(dir, `sshd-${name}.conf`);
  await fsp.writeFile(
    conf,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${dir}/host_ed25519`,
      `PidFile ${dir}/sshd-${name}.pid`,
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'AllowTcpForwarding yes',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const server: Sshd = { port, proc: spawnSshd(conf), exited: false };
  void server.proc.then(() => (server.exited = true));
  servers.push(server);
  await waitForPort(port, server);
  return port;
}

let p1: number;
let p2: number;

beforeAll(async () => {
  for (const tool of [sshd, 'ssh-keygen', 'flock', 'sha256sum']) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) throw new Error(`${tool} is missing: run ${setup} (installs openssh-server, openssh-client, util-linux)`);
  }
  if (process.getuid?.() !== 0) throw new Error('the SSH test logs in as root to a test sshd it starts itself, so it must run as root');
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-ssh-'));
  await fsp.mkdir('/run/sshd', { recursive: true, mode: 0o755 }); // sshd's privilege-separation dir
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/host_ed25519`]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/client_ed25519`]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', `${dir}/other_ed25519`]);
  await fsp.copyFile(`${dir}/client_ed25519.pub`, `${dir}/authorized_keys`);
  p1 = await startSshd('one');
  p2 = await startSshd('two');
  const hostPub = (await fsp.readFile(`${dir}/host_ed25519.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
  const otherPub = (await fsp.readFile(`${dir}/other_ed25519.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
  await fsp.writeFile(`${dir}/known_hosts`, `[127.0.0.1]:${p1},[127.0.0.1]:${p2} ${hostPub}\n[localhost]:${p1} ${hostPub}\n`);
  await fsp.writeFile(`${dir}/known_hosts_wrong`, `[127.0.0.1]:${p1} ${otherPub}\n`);

  remote = path.join(dir, 'remote');
  await fsp.mkdir(remote, { recursive: true });
  standIn = path.join(dir, 'nodeup-stand-in');
  await fsp.writeFile(
    standIn,
    [
      '#!/bin/sh',
      '# stand-in for nodeup on the remote side: records its args and the server port it was reached on',
      `R=${remote}`,
      'port=$(echo "$SSH_CONNECTION" | cut -d" " -f4)',
      'printf "%s %s\\n" "$port" "$*" >>"$R/calls.txt"',
      'echo "stand-in nodeup: $1 on port $port"',
      'echo "a line on stderr" >&2',
      'if [ -f "$R/fail-port-$port" ]; then echo "failing on purpose"; exit 1; fi',
      '# as nodeup apply --rollback-on-failure does when the new config failed and the old one converged',
      'if [ "$1" = apply ] && [ -f "$R/rolled-back-port-$port" ]; then echo "rolled back"; exit 3; fi',
      'if [ "$1" = ready ] && [ -f "$R/fail-ready-$port" ]; then echo "Node not Ready"; exit 1; fi',
      'i=0; while [ -f "$R/hold" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done',
      'exit 0',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  await fsp.writeFile(
    path.join(dir, 'boot.yaml'),
    'apiVersion: nodeup.dev/v1alpha1\nkind: BootConfig\nstateStore: file:///var/lib/nodeup-state\nclusterName: test\ninstanceGroup: nodes\nnodeConfigHash: sha256:' + 'e'.repeat(64) + '\n',
  );
});

afterAll(async () => {
  for (const s of servers) {
    s.proc.kill('SIGTERM');
    await s.proc;
  }
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

async function nodeupSsh(args: string[], knownHosts = `${dir}/known_hosts`, withBootConfig = true): Promise<{ code: number; out: string }> {
  const argv = [
    ...args,
    '--identity', `${dir}/client_ed25519`,
    '--known-hosts', knownHosts,
    '--binary', standIn,
    ...(withBootConfig ? ['--boot-config', `${dir}/boot.yaml`] : []),
    '--remote-binary', `${remote}/bin/nodeup`,
    '--remote-config', `${remote}/etc/nodeup/boot.yaml`,
    '--remote-lock', `${remote}/run/ssh.lock`,
  ];
  const { values, positionals } = parseCommandLine(sshCommand, argv);
  let out = '';
  try {
    const code = await sshCommand.run({ values, positionals, log: silentLogger, out: (t) => (out += t) });
    return { code, out };
  } catch (err: unknown) {
    return { code: 2, out: out + String(err) };
  }
}

/** The remote calls of a gated rollout (--gate-timeout 60) of control plane p2, then worker p1. */
function controlPlaneThenWorker(): string[] {
  const cfg = `${remote}/etc/nodeup/boot.yaml`;
  return [
    `${p2} apply --config ${cfg} --log-format pretty`,
    `${p2} ready --config ${cfg} --timeout 60 --log-format pretty`,
    `${p2} etcd members --check --config ${cfg} --log-format pretty`,
    `${p1} apply --config ${cfg} --log-format pretty`,
    `${p1} ready --config ${cfg} --timeout 60 --log-format pretty`,
  ];
}

async function calls(): Promise<string[]> {
  const t = await fsp.readFile(`${remote}/calls.txt`, 'utf8').catch(() => '');
  return t.split('\n').filter(Boolean);
}

describe('nodeup ssh apply (ssh2 against real sshd on 127.0.0.1)', () => {
  it('uploads the binary, writes the boot config atomically, runs apply with streamed, prefixed output', async () => {
    const res = await nodeupSsh(['apply', `root@127.0.0.1:${p1}`]);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain(`[127.0.0.1:${p1}] stand-in nodeup: apply on port ${p1}`);
    expect(res.out).toContain(`[127.0.0.1:${p1}] a line on stderr`);
    expect(res.out).toMatch(/ok\s+\d+ ms, binary uploaded, boot config written/);
    // apply, then the rollout's gate: nodeup ready on the host.
    expect(await calls()).toEqual([
      `${p1} apply --config ${remote}/etc/nodeup/boot.yaml --log-format pretty`,
      `${p1} ready --config ${remote}/etc/nodeup/boot.yaml --timeout 300 --log-format pretty`,
    ]);
    expect(res.out).toMatch(/gates passed: ready/);
    expect(await fsp.readFile(`${remote}/bin/nodeup`, 'utf8')).toBe(await fsp.readFile(standIn, 'utf8'));
    expect((await fsp.stat(`${remote}/bin/nodeup`)).mode & 0o777).toBe(0o755);
    expect(await fsp.readFile(`${remote}/etc/nodeup/boot.yaml`, 'utf8')).toBe(await fsp.readFile(`${dir}/boot.yaml`, 'utf8'));
    expect((await fsp.stat(`${remote}/etc/nodeup/boot.yaml`)).mode & 0o777).toBe(0o600);
    expect((await fsp.readdir(`${remote}/etc/nodeup`)).sort()).toEqual(['boot.yaml']); // no temp file left
  });

  it('does not upload an unchanged binary again', async () => {
    const before = await fsp.stat(`${remote}/bin/nodeup`);
    const res = await nodeupSsh(['apply', `root@127.0.0.1:${p1}`]);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/binary unchanged/);
    const after = await fsp.stat(`${remote}/bin/nodeup`);
    expect(after.ino).toBe(before.ino); // the file was not replaced
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect((await calls()).length).toBe(4);
  });

  it('refuses a second concurrent run on the same host (lock), naming the holder', async () => {
    await fsp.writeFile(`${remote}/hold`, '');
    const n = (await calls()).length;
    const first = nodeupSsh(['apply', `root@127.0.0.1:${p1}`]);
    const deadline = Date.now() + 20_000;
    while ((await calls()).length === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await calls()).length).toBe(n + 1); // the first run is inside apply, holding the lock
    const second = await nodeupSsh(['apply', `root@127.0.0.1:${p1}`]);
    expect(second.code).toBe(1);
    expect(second.out).toMatch(/is locked by another operator \(.+ pid \d+ since /);
    expect((await calls()).length).toBe(n + 1); // the second run never reached apply
    await fsp.rm(`${remote}/hold`);
    const r1 = await first;
    expect(r1.code, r1.out).toBe(0);
    // the lock is released once the run ends: a third run gets it
    const third = await nodeupSsh(['apply', `root@127.0.0.1:${p1}`]);
    expect(third.code, third.out).toBe(0);
  });

  it('stops the rollout at the first failed host (parallel 1): later hosts are not started', async () => {
    await fsp.writeFile(`${remote}/fail-port-${p2}`, '');
    const n = (await calls()).length;
    const res = await nodeupSsh(['apply', `127.0.0.1:${p2}`, `127.0.0.1:${p1}`, `localhost:${p1}`, '--parallel', '1']);
    await fsp.rm(`${remote}/fail-port-${p2}`);
    expect(res.code).toBe(1);
    expect(res.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p2}\\s+failed\\s+127\\.0\\.0\\.1:${p2}: nodeup apply exited with 1`));
    expect(res.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p1}\\s+skipped\\s+not started`));
    expect(res.out).toMatch(new RegExp(`localhost:${p1}\\s+skipped`));
    expect((await calls()).slice(n).map((l) => l.split(' ')[0])).toEqual([String(p2)]);
  });

  it('works on hosts in parallel up to --parallel (two names of one machine share its lock: one is refused)', async () => {
    // 127.0.0.1:p2 and localhost:p1 are the same machine, so they share the lock file. With
    // --parallel 2 both are started at once: exactly one gets the lock, the other is refused.
    await fsp.writeFile(`${remote}/hold`, '');
    setTimeout(() => void fsp.rm(`${remote}/hold`, { force: true }), 4000);
    const n = (await calls()).length;
    const par = await nodeupSsh(['apply', `127.0.0.1:${p2}`, `localhost:${p1}`, '--parallel', '2']);
    expect(par.code).toBe(1);
    expect((par.out.match(/is locked by another operator/g) ?? []).length).toBe(1);
    expect((par.out.match(/ ok {5}/g) ?? []).length).toBe(1);
    const applies = async (): Promise<string[]> => (await calls()).filter((l) => l.split(' ')[1] === 'apply');
    const a = (await applies()).length;
    expect((await calls()).length).toBe(n + 2); // the one apply, and its gate
    // one at a time, both succeed
    const seq = await nodeupSsh(['apply', `127.0.0.1:${p2}`, `localhost:${p1}`, '--parallel', '1']);
    expect(seq.code, seq.out).toBe(0);
    expect((await applies()).slice(a).map((l) => l.split(' ')[0])).toEqual([String(p2), String(p1)]);
  });

  it('rolls out control planes first, one at a time, each gated on ready and its etcd member; a failed gate stops the rollout', async () => {
    const n = (await calls()).length;
    // p1 and p2 are distinct sshd's on one machine; the control plane is listed last on purpose.
    const res = await nodeupSsh(['apply', `127.0.0.1:${p1}`, '--control-plane', `127.0.0.1:${p2}`, '--parallel', '4', '--gate-timeout', '60']);
    expect(res.code, res.out).toBe(0);
    expect((await calls()).slice(n)).toEqual(controlPlaneThenWorker());
    expect(res.out).toMatch(/gates passed: ready, etcd members --check \(control plane\)/);

    // The control plane's node does not come Ready: the workers are not started.
    await fsp.writeFile(`${remote}/fail-ready-${p2}`, '');
    const m = (await calls()).length;
    const stop = await nodeupSsh(['apply', `127.0.0.1:${p1}`, '--control-plane', `127.0.0.1:${p2}`]);
    await fsp.rm(`${remote}/fail-ready-${p2}`);
    expect(stop.code).toBe(1);
    expect(stop.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p2}\\s+failed\\s+127\\.0\\.0\\.1:${p2}: gate nodeup ready failed \\(exit 1\\): the rollout stops here`));
    expect(stop.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p1}\\s+skipped`));
    expect((await calls()).slice(m).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([`${p2} apply`, `${p2} ready`]);
    // --no-gate: apply only.
    const k = (await calls()).length;
    expect((await nodeupSsh(['apply', `127.0.0.1:${p1}`, '--no-gate'])).code).toBe(0);
    expect((await calls()).slice(k).map((l) => l.split(' ')[1])).toEqual(['apply']);
  });

  it('passes the day-2 flags to each apply; a host rolled back to its last good config (exit 3) stops the rollout before its gate and the next host', async () => {
    await fsp.writeFile(`${remote}/rolled-back-port-${p2}`, '');
    const n = (await calls()).length;
    const res = await nodeupSsh(['apply', `127.0.0.1:${p1}`, '--control-plane', `127.0.0.1:${p2}`, '--rollback-on-failure', '--drain-timeout', '120', '--ready-timeout', '90', '--no-drain']);
    await fsp.rm(`${remote}/rolled-back-port-${p2}`);
    expect(res.code).toBe(1);
    const cfg = `${remote}/etc/nodeup/boot.yaml`;
    expect((await calls()).slice(n), 'no gate, no next host').toEqual([`${p2} apply --config ${cfg} --log-format pretty --drain-timeout 120 --ready-timeout 90 --no-drain --rollback-on-failure`]);
    expect(res.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p2}\\s+failed\\s+127\\.0\\.0\\.1:${p2}: the new config failed and nodeup apply rolled the host back to its last good config \\(exit 3\\): the rollout stops here`));
    expect(res.out).toMatch(new RegExp(`127\\.0\\.0\\.1:${p1}\\s+skipped`));
    // A bad value is refused before any host is touched.
    const m = (await calls()).length;
    const bad = await nodeupSsh(['apply', `127.0.0.1:${p1}`, '--ready-timeout', '0']);
    expect(bad.code).toBe(2);
    expect(bad.out).toContain("--ready-timeout takes a whole number of seconds above 0, got '0'");
    expect((await calls()).length).toBe(m);
  });

  it("--instances rolls out to what `nodeup launch` recorded: control planes first by their launched role, a boot config's group only, every instance running", async () => {
    // Two qemu instance records whose ssh forwards are the two real sshd's, as `nodeup launch`
    // writes them; each pid is a live process named like QEMU (what `--list` calls running).
    const stateDir = path.join(dir, 'instances');
    const standInQemu = execa('bash', ['-c', 'exec -a qemu-system-x86_64-stand-in sleep 600']);
    try {
      const rec = (name: string, sshPort: number, role: string): object => ({
        name, cluster: 'test', instanceGroup: role === 'worker' ? 'nodes' : 'control-plane', role, accel: 'tcg', createdAt: '2026-12-07T22:00:00.000Z', createdAtMs: 0, sshPort, baseImage: '/img', argv: [],
      });
      for (const [name, port, role] of [['lab-cp-1', p2, 'control-plane'], ['nodes-1', p1, 'worker']] as const) {
        await fsp.mkdir(path.join(stateDir, name), { recursive: true });
        await fsp.writeFile(path.join(stateDir, name, 'instance.json'), JSON.stringify(rec(name, port, role)));
        await fsp.writeFile(path.join(stateDir, name, 'qemu.pid'), `${standInQemu.pid}\n`);
      }
      // Without --boot-config every instance of the cluster converges on the config it has.
      const n = (await calls()).length;
      const res = await nodeupSsh(['apply', '--instances', 'test', '--state-dir', stateDir, '--gate-timeout', '60'], `${dir}/known_hosts`, false);
      expect(res.code, res.out).toBe(0);
      expect((await calls()).slice(n)).toEqual(controlPlaneThenWorker());
      expect(res.out).toMatch(/lab-cp-1\s+ok .*\(control plane\)/);
      expect(res.out).toMatch(/nodes-1 {3}ok /);
      // With a boot config (instance group nodes, cluster test): that group's instances only.
      const g = (await calls()).length;
      const group = await nodeupSsh(['apply', '--instances', 'test', '--state-dir', stateDir, '--gate-timeout', '60']);
      expect(group.code, group.out).toBe(0);
      expect((await calls()).slice(g).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual([`${p1} apply`, `${p1} ready`]);
      expect(await fsp.readFile(`${remote}/etc/nodeup/boot.yaml`, 'utf8')).toBe(await fsp.readFile(`${dir}/boot.yaml`, 'utf8'));
      const wrongCluster = await nodeupSsh(['apply', '--instances', 'lab', '--state-dir', stateDir]);
      expect(wrongCluster.code).toBe(2);
      expect(wrongCluster.out).toContain("boot.yaml is cluster test's, not lab's");
      // A stopped instance is not left out silently: the rollout refuses before any host.
      await fsp.writeFile(path.join(stateDir, 'nodes-1', 'qemu.pid'), '999999999\n');
      const m = (await calls()).length;
      const refused = await nodeupSsh(['apply', '--instances', 'test', '--state-dir', stateDir]);
      expect(refused.code).toBe(2);
      expect(refused.out).toContain('--instances test: nodes-1 (stopped) is not running');
      expect((await calls()).length).toBe(m);
      const both = await nodeupSsh(['apply', '--instances', 'test', '--state-dir', stateDir, `127.0.0.1:${p1}`]);
      expect(both.out).toContain('--instances CLUSTER takes the hosts from the provider');
    } finally {
      standInQemu.kill();
      await standInQemu.catch(() => undefined);
    }
  });

  it('reaches a host through a bastion (ssh2 forwardOut)', async () => {
    const n = (await calls()).length;
    const res = await nodeupSsh(['plan', `127.0.0.1:${p2}`, '--bastion', `root@127.0.0.1:${p1}`]);
    expect(res.code, res.out).toBe(0);
    expect((await calls()).slice(n)).toEqual([`${p2} plan --config ${remote}/etc/nodeup/boot.yaml --log-format pretty`]);
  });

  it('refuses a host whose key does not match known_hosts', async () => {
    const n = (await calls()).length;
    const res = await nodeupSsh(['apply', `127.0.0.1:${p1}`], `${dir}/known_hosts_wrong`);
    expect(res.code).toBe(1);
    expect(res.out).toContain('HOST KEY MISMATCH');
    expect((await calls()).length).toBe(n);
  });
});
