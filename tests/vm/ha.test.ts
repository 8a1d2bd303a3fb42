// Issue 7, scenario 5: three control-plane nodes, then two of them lost for good and replaced.
// The control planes share a real S3 state store (MinIO, built from source, on 127.0.0.1; the guests
// reach it as 10.0.2.2 with lab credentials `nodeup launch` writes to /etc/nodeup/environment): the
// first creates the cluster PKI and etcd, the others read the PKI and join etcd as learners that are
// promoted. Checked: etcd has three voting members; 60 ConfigMaps are written. Then two losses:
// - cp-3 is deleted, and a replacement with a new name takes its address: it finds the dead member
//   on its own peer URL and removes it before it joins;
// - cp-2's machine dies, and a replacement comes up on a new address: etcd refuses it while the
//   dead member stays, so nodeup waits out the grace period and removes it (spec.etcd.memberCount: 3).
// After each, etcd has three voting members without the dead one, every ConfigMap is still there
// (read through the replacement's own API server), and the replacement's Node is Ready.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeLayout } from '../../src/engine/state-store.ts';
import { freePort } from '../integration/process-util.ts';
import { repo } from './harness.ts';
import { Lab, kubectl } from './lab.ts';

const lab = new Lab('vmha');
const cps = ['vmha-cp-1', 'vmha-cp-2', 'vmha-cp-3'];
const replacement = 'vmha-cp-4';
const second = 'vmha-cp-5';
const cpIp = '192.168.77.11';
const bucket = 'nodeup-vmha';
const creds = { user: `nodeup-${randomBytes(4).toString('hex')}`, password: randomBytes(18).toString('base64url') };
let minio: ChildProcess | undefined;
let minioPort = 0;

async function startMinio(dataDir: string): Promise<void> {
  let dir: string;
  try {
    dir = execFileSync(path.join(repo, 'scripts/fixtures/build.sh'), ['--bin', 'minio'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    throw new Error('MinIO is not built: run scripts/setup-foundation.sh (or scripts/fixtures/build.sh minio)');
  }
  minioPort = await freePort();
  let output = '';
  minio = spawn(path.join(dir, 'minio'), ['server', dataDir, '--address', `127.0.0.1:${minioPort}`, '--console-address', `127.0.0.1:${await freePort()}`], {
    env: { ...process.env, MINIO_ROOT_USER: creds.user, MINIO_ROOT_PASSWORD: creds.password, MINIO_BROWSER: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  minio.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  minio.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (minio.exitCode !== null) throw new Error(`minio exited: ${output.slice(-1000)}`);
    if (await fetch(`http://127.0.0.1:${minioPort}/minio/health/live`).then((r) => r.ok, () => false)) return;
    if (Date.now() > deadline) throw new Error(`minio did not answer: ${output.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

interface Members {
  members: { member: { name: string; isLearner: boolean; peerURLs: string[] }; healthy: boolean }[];
  voters: number;
  healthyVoters: number;
}

describe('three control planes; one is lost and replaced', () => {
  let cpConfig = '';
  let credsFile = '';
  let s3Args: string[] = [];
  // vCPUs per guest (NODEUP_VM_HA_CPUS, default launch's 2): three 2-vCPU TCG guests outnumber 2 host cores.
  const cpuArgs = process.env.NODEUP_VM_HA_CPUS ? ['--cpus', process.env.NODEUP_VM_HA_CPUS] : [];

  beforeAll(async () => {
    await lab.setup();
    await startMinio(path.join(lab.workDir, 'minio'));
    const client = new S3Client({ endpoint: `http://127.0.0.1:${minioPort}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: creds.user, secretAccessKey: creds.password } });
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    // Three TCG guests on two host cores: the third API server needed more than kubeadm's 250 s to
    // start, and was killed by its startup probe again and again (run 5); running ones missed their
    // liveness probe for 80 s (run 3). The probes allow 15 and 5 minutes here (spec.controlPlane.probes).
    // One vCPU is below the control-plane minimum that preflight enforces: say so in the config.
    // etcd: run 7 saw elections one after another (term 66 within minutes) with guest load 18;
    // a 5 s election timeout (500 ms heartbeats) rides out the stalls (spec.etcd, etcd's own flags).
    const controlPlaneExtra = '    probes: {startupFailureThreshold: 90, livenessFailureThreshold: 30}\n';
    const extra = cpuArgs.length > 0 ? '  preflight:\n    ignore: [NumCPU]\n' : '';
    const etcdExtra = '    heartbeatIntervalMs: 500\n    electionTimeoutMs: 5000\n';
    const cfg = lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp, etcdMemberCount: 3, etcdExtra, extra, controlPlaneExtra });
    cpConfig = await lab.writeFile('control-plane.yaml', cfg);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `cluster/${storeLayout.nodeConfig('control-plane')}`, Body: cfg }));
    credsFile = await lab.writeFile('s3-credentials.env', `AWS_ACCESS_KEY_ID=${creds.user}\nAWS_SECRET_ACCESS_KEY=${creds.password}\n`);
    await fsp.chmod(credsFile, 0o600);
    s3Args = ['--s3-endpoint', `http://10.0.2.2:${minioPort}`, '--s3-force-path-style', '--s3-credentials-file', credsFile];
    lab.mark('fixtures ready (MinIO, bucket, node config)');
  });

  afterAll(async () => {
    await lab.teardown();
    if (minio && minio.exitCode === null) {
      minio.kill('SIGTERM');
      await new Promise((r) => minio?.once('exit', r));
    }
  });

  const members = async (from: string): Promise<Members> => {
    const r = await lab.ssh(from, 'set -a; . /etc/nodeup/environment; set +a; /usr/local/bin/nodeup etcd members --config /etc/nodeup/boot.yaml --json --log-level warn', 180_000);
    if (r.code !== 0) throw new Error(`${from}: nodeup etcd members failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Members;
  };
  const voterNames = (m: Members): string[] => m.members.filter((x) => !x.member.isLearner).map((x) => x.member.name).sort();

  const describeMembers = (m: Members): string => JSON.stringify(m.members.map((x) => [x.member.name, x.member.isLearner, x.healthy]));
  const launchConverged = async (name: string, store: string): Promise<void> => {
    const res = await lab.launch(name, { nodeConfig: cpConfig, memoryMiB: 2560, stateStore: store, args: [...s3Args, ...cpuArgs] });
    lab.mark(`${name} receipt`);
    expect(res.code, `nodeup launch ${name}`).toBe(0);
    expect((await lab.receiptOf(name)).result).toBe('converged');
  };
  /** Waits for three healthy voting members, none of them `gone`. */
  const threeVotersWithout = (gone: string): Promise<Members> =>
    lab.waitFor(`three healthy voting members without ${gone}`, 600_000, async () => {
      const m = await members(cps[0]!);
      return m.members.length === 3 && m.healthyVoters === 3 && !voterNames(m).includes(gone) ? { ok: m } : { last: describeMembers(m) };
    });
  /** Every key, read through `from`'s own API server (admin.conf names spec.apiServerEndpoint, cp-1). */
  const expectKeys = async (from: string, keys: readonly string[]): Promise<void> => {
    const list = await lab.ssh(from, kubectl(`--server https://127.0.0.1:6443 get configmaps -n default -o 'jsonpath={range .items[*]}{.metadata.name}={.data.value}{"\\n"}{end}'`), 180_000);
    expect(list.code, list.stderr).toBe(0);
    const got = new Set(list.stdout.split('\n').filter((l) => l.startsWith('ha-key-')));
    expect(keys.filter((k) => !got.has(`${k}=${k}-value`)), `ConfigMaps lost (read on ${from})`).toEqual([]);
  };
  const nodeReady = async (name: string): Promise<void> => {
    await lab.nodeReady(cps[0]!, name);
    lab.mark(`${name} Ready`);
  };
  /** How many times nodeup's journal on `name` logged `message` (no single quotes in it). */
  const logged = async (name: string, message: string): Promise<number> =>
    Number((await lab.ssh(name, `journalctl -u nodeup --no-pager -o cat | grep -c '${message}' || true`)).stdout.trim());

  it('three voting etcd members; two replacements (same address, new address) join and the dead members are removed, no key lost', async () => {
    try {
      const store = `s3://${bucket}/cluster`;
      for (const name of cps) await launchConverged(name, store);
      const three = await lab.waitFor('three healthy voting members', 600_000, async () => {
        const m = await members(cps[0]!);
        return m.voters === 3 && m.healthyVoters === 3 && m.members.length === 3 ? { ok: m } : { last: describeMembers(m) };
      });
      expect(voterNames(three)).toEqual([...cps].sort());
      await lab.nodesReady(cps[0]!, cps);
      lab.mark('three control planes Ready, three voting members');

      // 60 ConfigMaps: keys that must survive the replacements.
      const keys = Array.from({ length: 60 }, (_, i) => `ha-key-${i}`);
      const manifest = keys.map((k) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: k, namespace: 'default' }, data: { value: `${k}-value` } })).join('\n---\n');
      // Three control planes on two emulated cores: the API servers answer slowly and the
      // controller-managers lose their leases (run 6: one apply of the 60 took over 300 s). The
      // apply is idempotent: it is repeated until it goes through.
      await lab.waitFor('60 ConfigMaps written', 1_200_000, async () => {
        const put = await lab.ssh(cps[0]!, `${kubectl('apply -f -')} <<'EOF'\n${manifest}\nEOF`, 300_000);
        return put.code === 0 ? { ok: true } : { last: `kubectl apply: exit ${put.code}: ${put.stderr || '(no output: ssh timed out after 300 s)'}` };
      });
      lab.mark('60 ConfigMaps written');

      // First loss: cp-3 is deleted for good, and a replacement with a new name takes its network
      // slot, so its address (and etcd peer URL). It finds the dead member on its own peer URL and
      // removes it before it joins (etcd takes no two members on one peer URL).
      const gone = cps[2]!;
      expect((await lab.deleteGuests([gone])).code).toBe(0);
      lab.mark(`${gone} deleted`);
      await launchConverged(replacement, store);
      expect(voterNames(await threeVotersWithout(gone))).toEqual([cps[0]!, cps[1]!, replacement].sort());
      expect(await logged(replacement, 'former etcd member, whose data is gone'), 'removed as the former member on this peer URL').toBeGreaterThan(0);
      lab.mark(`${gone}'s member removed; three voting members`);
      await expectKeys(replacement, keys);
      await nodeReady(replacement);

      // Second loss, the way a cloud replaces a machine: cp-2 dies (its QEMU is killed; its
      // instance record keeps its network slot), so the next replacement comes up on a new
      // address, and nothing names it as cp-2's successor. etcd refuses a fourth member while
      // cp-2's stays dead: the join waits out spec.etcd.deadMemberGraceSeconds, removes cp-2's
      // member (memberCount: 3), joins as a learner and is promoted.
      const lost = cps[1]!;
      const lostPeer = (await members(cps[0]!)).members.find((x) => x.member.name === lost)?.member.peerURLs[0];
      await lab.powerCut(lost);
      lab.mark(`${lost} powered off`);
      await launchConverged(second, store);
      const last = await threeVotersWithout(lost);
      expect(voterNames(last)).toEqual([cps[0]!, replacement, second].sort());
      const secondPeer = last.members.find((x) => x.member.name === second)?.member.peerURLs[0];
      expect(secondPeer, 'the second replacement is a member').toBeDefined();
      expect(secondPeer, 'the second replacement has an address of its own').not.toBe(lostPeer);
      expect(await logged(second, 'removing a dead etcd member'), 'removed after the grace period').toBeGreaterThan(0);
      lab.mark(`${lost}'s member removed after the grace period; three voting members`);
      await expectKeys(second, keys);
      await nodeReady(second);
      expect((await lab.deleteGuests([lost])).code).toBe(0);
      await lab.printTimings();
    } catch (err: unknown) {
      await lab.diagnoseAll();
      throw err;
    }
    // Its own limit, above the vm project's 60 min: under TCG on 2 host cores the two losses take
    // 55 to 70 min (run 12 passed in 55; run 10 was cut off by the project's limit while cp-5 was
    // converging). Each step keeps its own deadline, so this is only the backstop.
  }, 7_200_000);
});
