// The shared machinery of the cluster scenarios (issue 7): a lab of QEMU guests launched through
// `nodeup launch` on one private link, with the asset mirror and the registry served on 127.0.0.1
// (guests reach them as 10.0.2.2), an ssh key for root in every guest, NodeConfigs rendered from the
// fixtures' real versions and hashes, and the checks every scenario repeats (nodes Ready, a pod
// answers, a second apply changes nothing). On failure `diagnoseAll` prints per guest the serial
// log tail, the progress events, the receipt and the kubelet/containerd journal.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as path from 'node:path';
import { storeLayout } from '../../src/engine/state-store.ts';
import type { InstanceRecord } from '../../src/orchestrator/qemu.ts';
import { baseImage, binary, cacheDir, diagnose, keepVms, nodeup, readTimings, registryStorage, requireFixtures, serveRegistry, tempDir, type CliResult, type RunningRegistry } from './harness.ts';

export const assetsDir = path.join(cacheDir, 'vm', 'assets-current');
export const timeoutS = Number(process.env.NODEUP_VM_TIMEOUT ?? '2700');

export function readEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text.split('\n').filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

export async function loadEnv(file: string, script: string, need: readonly string[]): Promise<Record<string, string>> {
  const text = await fsp.readFile(file, 'utf8').catch(() => {
    throw new Error(`VM fixtures missing: ${file}. Run: bash ${script}`);
  });
  const env = readEnv(text);
  const missing = need.filter((k) => !env[k]);
  if (missing.length > 0) throw new Error(`VM fixtures incomplete: ${file} lacks ${missing.join(', ')}. Run: bash ${script}`);
  return env;
}

/** A read-only static file server on 127.0.0.1 (`GET <prefix><relative path>` -> `<dir>/<relative path>`); counts the GETs it answers. */
export interface DirServer {
  readonly server: http.Server;
  readonly port: number;
  /** Every request path served since start (or since `reset`). */
  readonly requests: string[];
  close(): Promise<void>;
}

export async function serveDir(dir: string, prefix: string, port = 0): Promise<DirServer> {
  const root = path.resolve(dir);
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = decodeURIComponent(url.pathname);
    requests.push(`${req.method ?? '?'} ${rel}`);
    const file = path.resolve(root, '.' + (rel.startsWith(prefix) ? rel.slice(prefix.length - 1) : '/\0'));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    fsp.readFile(file).then(
      (data) => res.writeHead(200, { 'content-length': data.length }).end(req.method === 'HEAD' ? undefined : data),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface SshResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NodeList {
  items: {
    metadata: { name: string };
    spec: { podCIDR?: string };
    status: { conditions?: { type: string; status: string; message?: string; lastTransitionTime?: string }[]; addresses?: { type: string; address: string }[] };
  }[];
}

export interface Receipt {
  readonly result: string;
  readonly startedAt?: string;
  readonly durationMs?: number;
  readonly tasks: { key: string; status: string; changes?: string[] }[];
  readonly error?: unknown;
}

/** The private link's subnet: every guest's node address is chosen from it (spec.networking.nodeAddress). */
export const labSubnet = '192.168.77.0/24';

/**
 * With Services on, pods and upstream's e2e.test load the control plane: under TCG the API server's
 * /livez then misses the 8 x 10 s kubelet allows (a CI run saw kubelet restart it in the middle of
 * the conformance tests), so the lab allows 5 minutes, as tests/vm/ha.test.ts does.
 */
const servicesProbes = '    probes: {livenessFailureThreshold: 30}\n';

export interface NodeConfigInput {
  readonly role: 'control-plane' | 'worker';
  readonly ig: string;
  /** The API server endpoint's address (a control plane's private address). */
  readonly cpIp: string;
  /** spec.etcd.memberCount (the control planes' number): a replacement then removes a dead member. */
  readonly etcdMemberCount?: number;
  /** Extra `spec.etcd:` lines (four-space indent), e.g. heartbeatIntervalMs. */
  readonly etcdExtra?: string;
  /** Extra `spec.controlPlane:` lines (four-space indent), e.g. probes. */
  readonly controlPlaneExtra?: string;
  /** Extra `spec:` lines (two-space indent), e.g. units or images. */
  readonly extra?: string;
  /** kube-proxy and CoreDNS on (every scenario but launch and ha, which check other things). */
  readonly services?: boolean;
  /** spec.kubeProxy.mode (default nftables, kube-proxy's own default). */
  readonly kubeProxyMode?: 'nftables' | 'iptables';
  /** spec.kubelet.registerWithTaints: [] (a control plane that takes workloads). */
  readonly untainted?: boolean;
  /** spec.controlPlane.leaderElection (default: the lab's 60/40/5 s). */
  readonly leaderElection?: { readonly leaseDurationSeconds: number; readonly renewDeadlineSeconds: number; readonly retryPeriodSeconds: number };
  /**
   * 'prev': the minor before (fixture kubernetes134: its kubelet, kubectl and images, KUBELET_PREV_*
   * of assets.env), where the in-place upgrade scenario starts; default the current one.
   */
  readonly kubernetes?: 'prev';
}

export const kubectl = (args: string): string => `/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf ${args}`;

export const isReady = (n: NodeList['items'][number]): boolean => n.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export const helloPod = (node: string): object => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'hello', namespace: 'default', labels: { app: 'hello' } },
  spec: {
    nodeSelector: { 'kubernetes.io/hostname': node },
    automountServiceAccountToken: false,
    containers: [{ name: 'hello', image: 'registry.k8s.io/nodeup-hello:1.0', imagePullPolicy: 'IfNotPresent', ports: [{ containerPort: 8080 }] }],
  },
});

export class Lab {
  readonly cluster: string;
  readonly t0 = Date.now();
  readonly marks: Record<string, number> = {};
  readonly started: string[] = [];
  /** Guests deleted during the test: teardown deletes only the others (launch --delete refuses unknown names). */
  private readonly deleted = new Set<string>();
  readonly launches: Record<string, CliResult> = {};
  workDir = '';
  stateDir = '';
  storeDir = '';
  keyFile = '';
  pubKey = '';
  env: Record<string, string> = {};
  registry: RunningRegistry | undefined;
  assets: DirServer | undefined;
  /**
   * Air-gapped (issue 20): the registry and the asset server above play the upstreams; stageMirror
   * copies what the nodes need into a mirror with `nodeup mirror` (an asset directory served here,
   * a registry of its own) and stops them, and the nodes' configs point at the mirror alone.
   */
  readonly airgap: boolean;
  mirrorRegistry: RunningRegistry | undefined;
  mirrorAssets: DirServer | undefined;
  /** The asset mirror as guests reach it (spec.assets.mirrors); '' when not air-gapped. */
  mirrorBase = '';
  /** The registry's and the asset mirror's ports stay fixed for the whole lab (a baked image's configs name them). */
  registryUrl = '';
  assetBase = '';
  /** 'stock' or 'baked': which image the guests boot, named in the figures. */
  image: 'stock' | 'baked' = 'stock';
  /** Host time (ms) each node was first seen Ready. */
  readonly readyAtMs: Record<string, number> = {};
  /** Wall time (ms) of the last `nodeup apply` run in each guest through applyInGuest (a converged run). */
  readonly convergedMs: Record<string, number> = {};

  constructor(cluster: string, opts: { readonly airgap?: boolean } = {}) {
    this.cluster = cluster;
    this.airgap = opts.airgap ?? false;
  }

  mark(what: string): void {
    this.marks[what] = (Date.now() - this.t0) / 1000;
    process.stdout.write(`[${this.cluster} +${this.marks[what].toFixed(0)}s] ${what}\n`);
  }

  async setup(): Promise<void> {
    requireFixtures();
    this.env = await loadEnv(path.join(assetsDir, 'assets.env'), 'scripts/vm/assets.sh', [
      'KUBELET_VERSION', 'KUBELET_SHA256', 'KUBECTL_SHA256', 'CONTAINERD_VERSION', 'CONTAINERD_SHA256', 'RUNC_VERSION', 'RUNC_SHA256',
      'CNI_PLUGINS_VERSION', 'CNI_PLUGINS_SHA256', 'CRICTL_VERSION', 'CRICTL_SHA256', 'ETCD_VERSION', 'ETCD_SHA256',
    ]);
    await loadEnv(path.join(registryStorage, 'images.env'), 'scripts/vm/images.sh', [
      'IMAGE_PAUSE', 'IMAGE_ETCD', 'IMAGE_KUBE_APISERVER', 'IMAGE_KUBE_CONTROLLER_MANAGER', 'IMAGE_KUBE_SCHEDULER', 'IMAGE_NODEUP_HELLO',
    ]);
    if (!existsSync('/usr/bin/ssh') || !existsSync('/usr/bin/ssh-keygen')) throw new Error('ssh client missing: run scripts/fixtures/apt-deps.sh (openssh-client)');
    this.workDir = await tempDir(`nodeup-vm-${this.cluster}-`);
    this.stateDir = path.join(this.workDir, 'instances');
    this.storeDir = path.join(this.workDir, 'store');
    this.keyFile = path.join(this.workDir, 'id_ed25519');
    await new Promise<void>((resolve, reject) =>
      execFile('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `nodeup-vm-${this.cluster}`, '-f', this.keyFile], (err) =>
        err ? reject(new Error(`ssh-keygen failed: ${err.message}`)) : resolve(),
      ),
    );
    this.pubKey = (await fsp.readFile(`${this.keyFile}.pub`, 'utf8')).trim();
    await this.startServers();
  }

  /** Starts (or restarts on the same ports) the registry and the asset mirror. */
  async startServers(): Promise<void> {
    // Resolve the *-current links once: another run of the scripts may repoint them meanwhile.
    this.registry = await serveRegistry(path.join(await fsp.realpath(registryStorage), 'storage'));
    this.registryUrl = `http://10.0.2.2:${this.registry.port}`;
    this.assets = await serveDir(await fsp.realpath(assetsDir), '/');
    this.assetBase = `http://10.0.2.2:${this.assets.port}`;
    if (this.airgap && !this.mirrorRegistry) {
      const storage = path.join(this.workDir, 'mirror-registry');
      await fsp.mkdir(storage, { recursive: true });
      await fsp.mkdir(path.join(this.workDir, 'mirror'), { recursive: true });
      this.mirrorRegistry = await serveRegistry(storage, { writable: true });
      this.mirrorAssets = await serveDir(path.join(this.workDir, 'mirror'), '/');
      // The nodes' registry.k8s.io mirror is the mirror's registry; their assets come from the mirror first.
      this.registryUrl = `http://10.0.2.2:${this.mirrorRegistry.port}`;
      this.mirrorBase = `http://10.0.2.2:${this.mirrorAssets.port}`;
    }
  }

  /**
   * Stages the mirror from the upstreams with the real CLI (`nodeup mirror` for these NodeConfig
   * files: their assets for amd64, the images they name, and every image of images.env, the
   * workloads' and upstream's test images), then stops the upstreams: from here on the cluster has
   * the mirror and nothing else (the guests' own package repositories aside).
   */
  async stageMirror(nodeConfigFiles: readonly string[]): Promise<void> {
    if (!this.airgap || !this.registry || !this.assets || !this.mirrorRegistry) throw new Error('stageMirror: the lab is not air-gapped (new Lab(name, { airgap: true }))');
    const images = Object.values(readEnv(await fsp.readFile(path.join(registryStorage, 'images.env'), 'utf8')))
      .map((ref) => `registry.k8s.io/${ref.split('@')[0]}`);
    const res = await nodeup([
      'mirror', ...nodeConfigFiles.flatMap((f) => ['--node-config', f]), '--arch', 'amd64', '--dir', path.join(this.workDir, 'mirror'),
      '--source', `http://127.0.0.1:${this.assets.port}`, '--registry', `127.0.0.1:${this.mirrorRegistry.port}`, '--insecure-registry',
      '--image-source', `registry.k8s.io=127.0.0.1:${this.registry.port}`, ...images.flatMap((i) => ['--image', i]),
    ], { echo: false });
    const summary = res.stdout.split('\n').filter((l) => /^(files|mirror ready|nodeup mirror)/.test(l));
    process.stdout.write(`${summary.join('\n')}\n`);
    if (res.code !== 0) throw new Error(`nodeup mirror failed (exit ${res.code}):\n${res.stdout.slice(-3000)}\n${res.stderr.slice(-2000)}`);
    await this.registry.stop();
    await this.assets.close();
    this.registry = undefined;
    this.assets = undefined;
    this.mark(`mirror staged (${res.seconds.toFixed(0)}s); upstream registry and asset server stopped`);
  }

  /** Stops the registry and the asset mirror: what a node does from now on must not need them. */
  async stopServers(): Promise<void> {
    await this.registry?.stop();
    await this.assets?.close();
    await this.mirrorRegistry?.stop();
    await this.mirrorAssets?.close();
    this.registry = undefined;
    this.assets = undefined;
    this.mirrorRegistry = undefined;
    this.mirrorAssets = undefined;
  }

  /** Pulls the plug: SIGKILL to the guest's QEMU (no shutdown, the guest's page cache is lost). */
  async powerCut(name: string): Promise<void> {
    const pid = Number((await fsp.readFile(path.join(this.stateDir, name, 'qemu.pid'), 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${name}: no qemu pid`);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${name}: qemu ${pid} survived SIGKILL`);
  }

  /** Powers a stopped guest on again: the same QEMU command line `nodeup launch` recorded, same disk. */
  async powerOn(name: string): Promise<void> {
    const inst = JSON.parse(await fsp.readFile(path.join(this.stateDir, name, 'instance.json'), 'utf8')) as { argv: string[] };
    await new Promise<void>((resolve, reject) =>
      execFile('qemu-system-x86_64', inst.argv, { timeout: 60_000 }, (err, _out, stderr) => (err ? reject(new Error(`${name}: qemu did not start: ${stderr}`)) : resolve())),
    );
  }

  /**
   * Waits until nodeup.service has finished a run in this boot of the guest and returns that run's
   * receipt (/var/lib/nodeup/status.json written after the boot, the unit inactive).
   */
  async receiptOfThisBoot(name: string, timeoutMs = 1_200_000): Promise<Receipt> {
    await this.waitFor(`${name}: nodeup.service to finish a run in this boot`, timeoutMs, async () => {
      // `systemctl show -p A,B` prints in systemd's own property order: ask one at a time.
      const r = await this.ssh(name, 'echo "$(systemctl show -p ActiveState --value nodeup.service)/$(systemctl show -p Result --value nodeup.service)"; stat -c %Y /var/lib/nodeup/status.json 2>/dev/null || echo none; cut -d. -f1 /proc/uptime; date +%s', 30_000);
      const [state = '', mtime = '0', uptime = '0', now = '0'] = r.stdout.trim().split('\n');
      const bootedAt = Number(now) - Number(uptime);
      if (r.code === 0 && state === 'inactive/success' && Number(mtime) >= bootedAt) return { ok: true };
      const receipt = mtime === 'none' ? 'no receipt yet' : Number(mtime) < bootedAt ? 'the receipt is from an earlier boot' : `receipt written ${Number(mtime) - bootedAt}s after boot`;
      return { last: r.code === 0 ? `nodeup.service ${state}, ${receipt}` : `ssh exit ${r.code}` };
    });
    return JSON.parse((await this.ssh(name, 'cat /var/lib/nodeup/status.json')).stdout) as Receipt;
  }

  /** Deletes guests (`nodeup launch --delete`): their machines are gone for good. */
  async deleteGuests(names: readonly string[]): Promise<CliResult> {
    const res = await nodeup(['launch', '--state-dir', this.stateDir, '--delete', names.join(',')], { echo: false });
    if (res.code === 0) for (const n of names) this.deleted.add(n);
    return res;
  }

  async teardown(): Promise<void> {
    await this.stopServers();
    if (!this.stateDir) return;
    if (keepVms) {
      process.stdout.write(`NODEUP_KEEP_VMS=1: keeping ${this.started.join(', ')} in ${this.stateDir} (ssh key ${this.keyFile})\n`);
      return;
    }
    // A launch that failed before it made a record leaves nothing to delete.
    const live = this.started.filter((n) => !this.deleted.has(n) && existsSync(path.join(this.stateDir, n, 'instance.json')));
    if (live.length > 0) {
      const res = await nodeup(['launch', '--state-dir', this.stateDir, '--delete', live.join(',')], { echo: false });
      // A guest left running takes the next suite's CPU: fail loudly and keep the state dir to clean up by hand.
      if (res.code !== 0) throw new Error(`teardown: nodeup launch --delete ${live.join(',')} failed (exit ${res.code}): ${res.stderr.trim()}; guests may still run (see ${this.stateDir})`);
    }
    await fsp.rm(this.workDir, { recursive: true, force: true });
  }

  nodeConfig(o: NodeConfigInput): string {
    const e = this.env;
    const ov = (name: string, v: string, sha: string, file: string): string =>
      `      ${name}: {version: "${v}", sha256: ${sha}, urls: ["${this.assetBase}/${name}/${v}/linux-amd64/${file}"]}`;
    const k = (name: 'KUBELET_VERSION' | 'KUBELET_SHA256' | 'KUBECTL_VERSION' | 'KUBECTL_SHA256'): string => {
      const key = o.kubernetes === 'prev' ? name.replace('_', '_PREV_') : name;
      const v = e[key];
      if (!v) throw new Error(`${key} is not in assets.env: build the minor before first (bash scripts/fixtures/build.sh kubernetes134, then scripts/vm/setup.sh)`);
      return v;
    };
    return `apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: ${this.cluster}, instanceGroup: ${o.ig}}
spec:
  role: ${o.role}
  kubernetesVersion: v${k('KUBELET_VERSION')}
  apiServerEndpoint: https://${o.cpIp}:6443
  assets:
${this.mirrorBase ? `    mirrors: ["${this.mirrorBase}"]\n` : ''}    overrides:
${ov('kubelet', k('KUBELET_VERSION'), k('KUBELET_SHA256'), 'kubelet')}
${ov('kubectl', k('KUBECTL_VERSION'), k('KUBECTL_SHA256'), 'kubectl')}
${ov('containerd', e.CONTAINERD_VERSION!, e.CONTAINERD_SHA256!, `containerd-${e.CONTAINERD_VERSION}-linux-amd64.tar.gz`)}
${ov('runc', e.RUNC_VERSION!, e.RUNC_SHA256!, 'runc.amd64')}
${ov('cni-plugins', e.CNI_PLUGINS_VERSION!, e.CNI_PLUGINS_SHA256!, `cni-plugins-linux-amd64-v${e.CNI_PLUGINS_VERSION}.tgz`)}
${ov('crictl', e.CRICTL_VERSION!, e.CRICTL_SHA256!, `crictl-v${e.CRICTL_VERSION}-linux-amd64.tar.gz`)}
${ov('etcd', e.ETCD_VERSION!, e.ETCD_SHA256!, `etcd-v${e.ETCD_VERSION}-linux-amd64.tar.gz`)}
  containerd:
    version: "${e.CONTAINERD_VERSION}"
    registryMirrors:
      registry.k8s.io: ["${this.registryUrl}"]
  kubeProxy: {enabled: ${o.services ? 'true' : 'false'}, mode: ${o.kubeProxyMode ?? 'nftables'}}
  controlPlane:
    # Under TCG the API server can take longer than the default 10 s renew deadline to answer a
    # lease update; the controller-manager then exits ("leaderelection lost") and restarts in a loop.
    leaderElection: {${Object.entries(o.leaderElection ?? { leaseDurationSeconds: 60, renewDeadlineSeconds: 40, retryPeriodSeconds: 5 }).map(([k, v]) => `${k}: ${v}`).join(', ')}}
${o.services && !(o.controlPlaneExtra ?? '').includes('probes:') ? servicesProbes : ''}${o.controlPlaneExtra ?? ''}${o.untainted ? '  kubelet: {registerWithTaints: []}\n' : ''}  networking:
    podCIDR: 10.244.0.0/16
    nodeAddress: {cidr: ${labSubnet}}
  etcd:
    version: "${e.ETCD_VERSION}"
    clusters: [{name: main, clientPort: 2379, peerPort: 2380}]
${o.etcdMemberCount ? `    memberCount: ${o.etcdMemberCount}\n    deadMemberGraceSeconds: 30\n` : ''}${o.etcdExtra ?? ''}  addons:
    coredns: {enabled: ${o.services ? 'true' : 'false'}}
  files:
    - path: /root/.ssh/authorized_keys
      content: "${this.pubKey}\\n"
      mode: "0600"
${o.extra ?? ''}`;
  }

  async writeFile(name: string, content: string): Promise<string> {
    const file = path.join(this.workDir, name);
    await fsp.writeFile(file, content);
    return file;
  }

  /** Publishes an instance group's NodeConfig in the host store (served to guests by `--state-store`). */
  async publishNodeConfig(ig: string, content: string): Promise<void> {
    const file = path.join(this.storeDir, storeLayout.nodeConfig(ig));
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, content);
  }

  async launch(name: string, o: { nodeConfig: string; memoryMiB: number; stateStore?: string; image?: string; args?: readonly string[] }): Promise<CliResult> {
    this.started.push(name);
    const res = await nodeup([
      'launch', '--provider', 'qemu', '--node-config', o.nodeConfig, '--name', name,
      '--network', 'lab', ...(o.stateStore ? ['--state-store', o.stateStore] : []), ...(o.args ?? []),
      '--binary', binary, '--base-image', o.image ?? baseImage, '--state-dir', this.stateDir,
      '--memory', String(o.memoryMiB), '--disk-size', '12G',
      '--timeout', String(timeoutS), '--log-format', 'json',
    ]);
    this.launches[name] = res;
    return res;
  }

  /** Waits until `nodeup launch` has recorded the guest (its QEMU started, its private-link slot taken). */
  async waitForInstance(name: string, timeoutMs = 300_000): Promise<void> {
    await this.waitFor(`${name}: its instance record`, timeoutMs, async () => (existsSync(path.join(this.stateDir, name, 'instance.json')) ? { ok: true } : { last: 'none yet' }), 1000);
  }

  /** The worker's first nodeup run (nodeup.service) waited for the join material, then found it (node-secrets.ts). */
  async expectWaitedForJoin(name: string): Promise<void> {
    const count = async (msg: string): Promise<number> =>
      Number((await this.ssh(name, `journalctl -u nodeup.service -o cat --no-pager | grep -c '"msg":"${msg}"'`)).stdout.trim() || '0');
    const waiting = await count('waiting for a control plane to write the join material to the state store');
    const found = await count('join material found in the state store');
    if (waiting < 1 || found < 1) throw new Error(`${name}: its first run did not wait for the join material and then find it (progress lines ${waiting}, found ${found})`);
    process.stdout.write(`${name}: nodeup waited for the join material (${waiting} progress line(s)), then found it\n`);
  }

  async receiptOf(name: string): Promise<Receipt> {
    return JSON.parse(await fsp.readFile(path.join(this.stateDir, name, 'receipt.json'), 'utf8')) as Receipt;
  }

  async eventsOf(name: string): Promise<string[]> {
    const text = await fsp.readFile(path.join(this.stateDir, name, 'events.jsonl'), 'utf8').catch(() => '');
    return text.split('\n').filter(Boolean).map((l) => String((JSON.parse(l) as { phase?: string }).phase ?? '?'));
  }

  /** What `nodeup launch` recorded of a guest (its instance.json). */
  async instanceRecord(name: string): Promise<InstanceRecord> {
    return JSON.parse(await fsp.readFile(path.join(this.stateDir, name, 'instance.json'), 'utf8')) as InstanceRecord;
  }

  async sshPort(name: string): Promise<number> {
    return (await this.instanceRecord(name)).sshPort;
  }

  /** The host port a guest forwards `guest` from (`nodeup launch --forward`). */
  async forwardedPort(name: string, guest: number): Promise<number> {
    const f = (await this.instanceRecord(name)).forwards?.find((x) => x.guest === guest);
    if (!f) throw new Error(`${name} forwards no port ${guest} to this machine: launch it with --forward ${guest} (Lab.launch args)`);
    return f.host;
  }

  /** Runs a shell command in a guest as root over ssh (key from the scenario's spec.files). */
  async ssh(name: string, command: string, timeoutMs = 120_000): Promise<SshResult> {
    const port = await this.sshPort(name);
    const args = [
      '-i', this.keyFile, '-p', String(port),
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=20',
      'root@127.0.0.1', command,
    ];
    return new Promise((resolve) => {
      execFile('ssh', args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 255) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  }

  /** Polls `check` every `everyMs` until it returns a value, or fails with the last state after `timeoutMs`. */
  async waitFor<T>(what: string, timeoutMs: number, check: () => Promise<{ ok: T } | { last: string }>, everyMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastPrint = 0;
    for (;;) {
      const r = await check();
      if ('ok' in r) return r.ok;
      if (Date.now() - lastPrint > 30_000) {
        process.stdout.write(`[${this.cluster} +${((Date.now() - this.t0) / 1000).toFixed(0)}s] waiting for ${what}: ${r.last.split('\n').slice(0, 6).join(' | ')}\n`);
        lastPrint = Date.now();
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; last: ${r.last}`);
      await new Promise((res) => setTimeout(res, everyMs));
    }
  }

  /** Copies the CA certificate and the bootstrap token the control plane created (in its embedded store) into the host store. */
  async copyJoinMaterial(cpName: string): Promise<void> {
    for (const key of [storeLayout.pki('ca.crt'), storeLayout.secret('bootstrap-token')]) {
      const r = await this.ssh(cpName, `base64 -w0 /var/lib/nodeup/launch-store/${key}`);
      if (r.code !== 0) throw new Error(`${cpName}: cannot read ${key} from its store: ${r.stderr}`);
      await fsp.mkdir(path.join(this.storeDir, path.dirname(key)), { recursive: true });
      await fsp.writeFile(path.join(this.storeDir, key), Buffer.from(r.stdout.trim(), 'base64'), { mode: 0o600 });
    }
  }

  /** Waits until the Node `name` is Ready, whatever other Nodes there are (a dead one's stays). */
  async nodeReady(from: string, name: string, timeoutMs = 600_000): Promise<void> {
    await this.waitFor(`${name} Ready`, timeoutMs, async () => {
      const r = await this.ssh(from, kubectl(`get node ${name} -o json`));
      if (r.code !== 0) return { last: `kubectl exit ${r.code}: ${r.stderr.trim()}` };
      const ready = (JSON.parse(r.stdout) as NodeList['items'][number]).status.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status !== 'True') return { last: `Ready=${ready?.status ?? 'unknown'} ${ready?.message ?? ''}` };
      const since = Date.parse(ready.lastTransitionTime ?? '');
      if (!Number.isNaN(since)) this.readyAtMs[name] ??= since;
      return { ok: true };
    });
  }

  /** Waits until exactly `names` are registered and Ready; returns the node list. */
  async nodesReady(from: string, names: readonly string[], timeoutMs = 900_000): Promise<NodeList> {
    return this.waitFor(`${names.join(', ')} Ready`, timeoutMs, async () => {
      const r = await this.ssh(from, kubectl('get nodes -o json'));
      if (r.code !== 0) return { last: `kubectl exit ${r.code}: ${r.stderr}` };
      const list = JSON.parse(r.stdout) as NodeList;
      const state = list.items.map((n) => `${n.metadata.name}=${isReady(n) ? 'Ready' : (n.status.conditions?.find((c) => c.type === 'Ready')?.message ?? 'NotReady')}`);
      // When the node turned Ready, by the API server's clock (the guests' clocks follow the host's RTC).
      for (const n of list.items) {
        const since = Date.parse(n.status.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime ?? '');
        if (!Number.isNaN(since)) this.readyAtMs[n.metadata.name] ??= since;
      }
      const have = list.items.map((n) => n.metadata.name).sort();
      if (have.join(',') === [...names].sort().join(',') && list.items.every(isReady)) return { ok: list };
      return { last: state.join(', ') || 'no nodes' };
    });
  }

  /** Creates the hello pod on `node` and waits until it answers HTTP from `from`; returns its IP. */
  async helloAnswers(from: string, node: string): Promise<string> {
    await this.waitFor('the hello pod to be created', 300_000, async () => {
      const r = await this.ssh(from, `${kubectl('apply -f -')} <<'EOF'\n${JSON.stringify(helloPod(node))}\nEOF`);
      return r.code === 0 ? { ok: true } : { last: r.stderr };
    });
    const pod = await this.waitFor(`the hello pod Running on ${node}`, 600_000, async () => {
      const r = await this.ssh(from, kubectl('get pod hello -o json'));
      if (r.code !== 0) return { last: r.stderr };
      const p = JSON.parse(r.stdout) as { spec: { nodeName?: string }; status: { phase?: string; podIP?: string; containerStatuses?: { state?: unknown }[] } };
      if (p.status.phase === 'Running' && p.status.podIP) return { ok: { ip: p.status.podIP, node: p.spec.nodeName } };
      return { last: `${p.status.phase ?? '?'} on ${p.spec.nodeName ?? '?'}: ${JSON.stringify(p.status.containerStatuses?.[0]?.state ?? {})}` };
    });
    this.mark('pod Running');
    if (pod.node !== node) throw new Error(`the hello pod runs on ${pod.node ?? '?'}, not ${node}`);
    const body = await this.waitFor(`the pod to answer from ${from}`, 120_000, async () => {
      const r = await this.ssh(from, `curl -sS --max-time 5 http://${pod.ip}:8080/`);
      return r.code === 0 ? { ok: r.stdout } : { last: r.stderr };
    }, 3000);
    if (body !== 'hello from hello\n') throw new Error(`the hello pod answered ${JSON.stringify(body)}`);
    this.mark('pod reached');
    return pod.ip;
  }

  /** The port of the store `nodeup launch` served to `name` (0: it runs with its embedded store). */
  async servedStorePort(name: string): Promise<number> {
    const ud = await fsp.readFile(path.join(this.stateDir, name, 'user-data'), 'utf8');
    return Number(/stateStore: http:\/\/10\.0\.2\.2:(\d+)\/store\n/.exec(ud)?.[1] ?? 0);
  }

  /** Serves the host store again on the port `name`'s boot config names (launch stopped serving it when it exited). */
  async serveStoreFor(name: string): Promise<DirServer | undefined> {
    const port = await this.servedStorePort(name);
    return port > 0 ? serveDir(this.storeDir, '/store/', port) : undefined;
  }

  /** Runs `nodeup apply` in the guest and returns its receipt; fails unless it exits 0. */
  async applyInGuest(name: string): Promise<Receipt> {
    const store = await this.serveStoreFor(name);
    try {
      const r = await this.ssh(name, '/usr/local/bin/nodeup apply --config /etc/nodeup/boot.yaml --log-format json >/var/log/nodeup-reapply.log 2>&1; echo "exit $?"; cat /var/lib/nodeup/status.json', 900_000);
      if (!r.stdout.startsWith('exit 0\n')) throw new Error(`${name}: nodeup apply failed: ${r.stdout.slice(0, 2000)} ${r.stderr}`);
      const receipt = JSON.parse(r.stdout.slice(r.stdout.indexOf('\n') + 1)) as Receipt;
      if (receipt.durationMs !== undefined) this.convergedMs[name] = receipt.durationMs;
      return receipt;
    } finally {
      await store?.close();
    }
  }

  /**
   * Prints each guest's figures and, when NODEUP_VM_FIGURES names a file, appends them there as JSON
   * lines (bench/vm-cluster.sh reads them): seconds from guest start to nodeup start, nodeup's own
   * wall time on the first boot (cold from the stock image, or from the baked one) and when
   * converged, seconds from guest start to node Ready, and the accelerator.
   */
  async printTimings(): Promise<void> {
    const s = (ms: number | undefined): number | null => (ms === undefined ? null : Math.round(ms / 100) / 10);
    for (const name of this.started) {
      const t = await readTimings(this.stateDir, name).catch(() => undefined);
      if (!t) continue;
      const fig = {
        scenario: this.cluster,
        node: name,
        image: this.image,
        accel: t.accel ?? 'unknown',
        guestStartToNodeupStartS: s(t.startedAtMs === undefined ? undefined : t.startedAtMs - t.launchedAtMs),
        nodeupFirstRunS: s(t.nodeupMs),
        nodeupConvergedS: s(this.convergedMs[name]),
        guestStartToReadyS: s(this.readyAtMs[name] === undefined ? undefined : this.readyAtMs[name] - t.launchedAtMs),
        guestStartToReceiptS: s(t.receiptAtMs === undefined ? undefined : t.receiptAtMs - t.launchedAtMs),
      };
      process.stdout.write(`figures ${JSON.stringify(fig)}\n`);
      if (process.env.NODEUP_VM_FIGURES) await fsp.appendFile(process.env.NODEUP_VM_FIGURES, JSON.stringify(fig) + '\n');
    }
    process.stdout.write(`${this.cluster} marks (s since start): ${JSON.stringify(this.marks)}\n`);
  }

  async diagnoseAll(): Promise<void> {
    for (const n of this.started) {
      process.stdout.write((await diagnose(this.stateDir, n, this.launches[n])) + '\n');
      const logs = await this.ssh(n, 'journalctl -u nodeup -u nodeup-routes -u kubelet -u containerd --no-pager | tail -80; crictl ps -a 2>/dev/null | head -20; ip route; for c in $(crictl ps -a -q --name "kube-proxy|coredns" 2>/dev/null); do crictl logs --tail 20 $c 2>&1; done; cat /var/lib/nodeup/status.json 2>/dev/null | head -c 4000', 60_000).catch(() => undefined);
      if (logs) process.stdout.write(`===== ${n}: nodeup/kubelet/containerd journal tail, receipt in the guest =====\n${logs.stdout}${logs.stderr}\n`);
    }
    process.stdout.write(`${this.cluster} marks (s since start): ${JSON.stringify(this.marks)}\n`);
  }
}
