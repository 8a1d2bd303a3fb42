// Issue 7, scenario 2 (and issue 6's proof of `nodeup bake`): the same cluster as cluster.test.ts,
// from an image baked by a real `packer build` of images/packer/qemu under QEMU. The bake runs the
// control-plane NodeConfig in bake mode inside the build VM: apt installs the packages, every asset
// comes from the local asset mirror into nodeup's cache and into place, and containerd pulls the
// control-plane, pause and workload images through the registry mirror; then the image is sealed.
// Before any guest boots from it, the asset mirror and the registry are STOPPED: a control plane and
// a worker launched from the baked image must converge with no asset server, no registry and no
// package install. Checked: each first-boot receipt has no download, archive, package or image task
// that changed, user-data found the pinned nodeup binary in place (no `fetching` event), both nodes
// Ready, the hello pod (its image baked) runs on the worker and answers the control plane, kube-proxy
// in iptables mode (this is the scenario for that mode; the others run nftables) serves a ClusterIP
// and NodePorts, CoreDNS (baked) answers a pod, and a second `nodeup apply` changes nothing. The two
// guests are launched together; the worker's nodeup waits for the join material. Until it gets it,
// the control plane is the only node and keeps its control-plane taint: CoreDNS turns Ready on it,
// through its toleration.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configHash } from '../../src/model/config.ts';
import { ipInCidr } from '../../src/engine/net/cidr.ts';
import { storeLayout } from '../../src/engine/state-store.ts';
import { baseImage, binary, repo } from './harness.ts';
import { servicesWork, systemPodsReady } from './kube-checks.ts';
import { Lab, kubectl, type Receipt } from './lab.ts';

const lab = new Lab('vmbk');
lab.image = 'baked';
const cpName = 'vmbk-cp-1';
const wkName = 'vmbk-node-1';
const cpIp = '192.168.77.11';
const wkIp = '192.168.77.12';
// The workload image and the client pod's (agnhost) baked in too: after the bake nothing is served.
const prePull = '  images: {prePull: ["registry.k8s.io/nodeup-hello:1.0", "registry.k8s.io/e2e-test-images/agnhost:2.59"]}\n';

/** Tasks that fetch or install something: none may change on a node booted from the baked image. */
const fetchingKinds = /^(download|archive|package|image):/;

function run(cmd: string, args: readonly string[], prefix: string, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const onData = (d: Buffer): void => {
      const text = d.toString();
      tail = (tail + text).slice(-8000);
      for (const line of text.split('\n')) if (line.trim()) process.stdout.write(`${prefix}${line}\n`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => resolve({ code: code ?? 1, tail }));
    child.on('error', (err) => resolve({ code: 127, tail: err.message }));
  });
}

/** A real `packer build` of images/packer/qemu (TCG) on the local base image; returns a launchable image folder. */
async function bakeImage(bakeNodeConfig: string): Promise<string> {
  const storeDir = path.join(lab.workDir, 'bake-store');
  const nodeConfigFile = path.join(storeDir, storeLayout.nodeConfig('control-plane'));
  await fsp.mkdir(path.dirname(nodeConfigFile), { recursive: true });
  await fsp.writeFile(nodeConfigFile, bakeNodeConfig);
  const bootConfig = await lab.writeFile(
    'bake-boot.yaml',
    `apiVersion: nodeup.dev/v1alpha1\nkind: BootConfig\nstateStore: file:///tmp/nodeup-store\nclusterName: ${lab.cluster}\ninstanceGroup: control-plane\nnodeConfigHash: "${configHash(bakeNodeConfig)}"\n`,
  );
  const base = await fsp.realpath(baseImage);
  const out = path.join(lab.workDir, 'packer-output');
  const packer = await run(
    'nice',
    [
      '-n', '5', 'packer', 'build', '-color=false',
      '-var', 'accelerator=tcg',
      '-var', `base_image_url=${base}/rootfs.img`, '-var', 'base_image_checksum=none', '-var', 'disk_size=8G', '-var', 'memory=2048',
      '-var', `extra_qemuargs=[["-kernel","${base}/vmlinuz"],["-initrd","${base}/initrd.img"],["-append","root=/dev/vda rw console=ttyS0 net.ifnames=0"]]`,
      '-var', `cloud_init_dir=${repo}/images/packer/qemu/cloud-init-root`, '-var', 'ssh_username=root',
      '-var', 'build_cleanup=rm -f /etc/ssh/sshd_config.d/90-packer-build.conf; usermod -p \\* root; echo PasswordAuthentication no >/etc/ssh/sshd_config.d/50-cloud-init.conf',
      '-var', `kubernetes_version=v${lab.env.KUBELET_VERSION}`, '-var', `bake_config=${bootConfig}`, '-var', `state_store_dir=${storeDir}`,
      '-var', `nodeup_binary=${binary}`, '-var', `output_directory=${out}`,
      `${repo}/images/packer/qemu`,
    ],
    '  packer| ',
    { ...process.env, CHECKPOINT_DISABLE: '1', PACKER_LOG: '0' },
  );
  if (packer.code !== 0) throw new Error(`packer build failed (exit ${packer.code}):\n${packer.tail}`);
  const qcow = (await fsp.readdir(out)).find((f) => f.endsWith('.qcow2'));
  if (!qcow) throw new Error(`packer build left no .qcow2 in ${out}`);
  // `nodeup launch` boots a raw root with the base image's kernel (the bake leaves the kernel alone).
  const image = path.join(lab.workDir, 'baked-image');
  await fsp.mkdir(image);
  const conv = await run('qemu-img', ['convert', '-O', 'raw', path.join(out, qcow), path.join(image, 'rootfs.img')], '  qemu-img| ');
  if (conv.code !== 0) throw new Error(`qemu-img convert failed: ${conv.tail}`);
  await fsp.rm(out, { recursive: true, force: true });
  for (const f of ['vmlinuz', 'initrd.img']) await fsp.symlink(path.join(base, f), path.join(image, f));
  return image;
}

function expectNothingFetched(name: string, receipt: Receipt): void {
  expect(receipt.result, `${name}: first-boot receipt`).toBe('converged');
  const fetched = receipt.tasks.filter((t) => fetchingKinds.test(t.key) && t.status !== 'unchanged');
  expect(fetched, `${name}: download/archive/package/image tasks that changed at first boot`).toEqual([]);
  const checked = receipt.tasks.filter((t) => fetchingKinds.test(t.key));
  expect(checked.length, `${name}: download/archive/package/image tasks in the receipt`).toBeGreaterThan(5);
  const changed = receipt.tasks.filter((t) => t.status === 'changed').map((t) => t.key);
  process.stdout.write(`${name}: first boot from the baked image: ${receipt.tasks.length} tasks, ${checked.length} download/archive/package/image tasks all unchanged; changed: ${changed.join(', ')}\n`);
}

describe('cluster from a baked image: zero downloads at boot', () => {
  let cpConfig = '';
  let wkConfig = '';
  let image = '';

  beforeAll(async () => {
    await lab.setup();
    cpConfig = await lab.writeFile(
      'control-plane.yaml',
      lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp, extra: prePull, kubeProxyMode: 'iptables', services: true }),
    );
    const worker = lab.nodeConfig({ role: 'worker', ig: 'nodes', cpIp, extra: prePull, kubeProxyMode: 'iptables', services: true });
    wkConfig = await lab.writeFile('nodes.yaml', worker);
    await lab.publishNodeConfig('nodes', worker);
    lab.mark('fixtures ready');
  });

  afterAll(() => lab.teardown());

  it('bakes with packer, then a control plane and a worker from the image converge with no mirror, no registry and no package install', async () => {
    try {
      // 1. The bake: the control plane's config (the worker boots from the same image).
      const bakeConfig = lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp, extra: prePull, kubeProxyMode: 'iptables', services: true });
      // NODEUP_VM_BAKED_IMAGE=<dir> (development only) keeps the baked image there and reuses it.
      const keep = process.env.NODEUP_VM_BAKED_IMAGE;
      if (keep && existsSync(path.join(keep, 'rootfs.img'))) {
        process.stdout.write(`NODEUP_VM_BAKED_IMAGE: reusing ${keep}: NO packer build in this run\n`);
        image = keep;
      } else {
        image = await bakeImage(bakeConfig);
        lab.mark('image baked (packer build + convert)');
        // kubelet, kubectl, containerd, runc, CNI plugins, crictl (etcd runs from its image).
        const assetGets = lab.assets?.requests.filter((r) => r.startsWith('GET ')).length ?? 0;
        expect(assetGets, 'the bake fetched the assets from the mirror').toBeGreaterThanOrEqual(6);
        if (keep) {
          await fsp.cp(image, keep, { recursive: true, verbatimSymlinks: true });
          image = keep;
        }
      }

      // 2. Nothing to download from: the mirror and the registry go away.
      await lab.stopServers();

      // 3. The control plane and the worker from the baked image, launched together: the worker's
      // nodeup waits (--join-timeout) for the CA certificate and the bootstrap token the control
      // plane creates. The worker joins the private link once the control plane holds .11.
      const cpLaunched = lab.launch(cpName, { nodeConfig: cpConfig, memoryMiB: 3072, image });
      await lab.waitForInstance(cpName);
      const launchedWorker = lab.launch(wkName, { nodeConfig: wkConfig, memoryMiB: 2048, image, stateStore: pathToFileURL(lab.storeDir).href });
      const cp = await cpLaunched;
      lab.mark('control-plane receipt');
      expect(cp.code, 'nodeup launch (control plane) exit code').toBe(0);
      expectNothingFetched(cpName, await lab.receiptOf(cpName));
      expect(await lab.eventsOf(cpName)).not.toContain('fetching');

      // Until the join material reaches the worker, the control plane is the only node, and it keeps
      // the control-plane taint: CoreDNS runs there only through its toleration, and turns Ready there.
      const taints = await lab.ssh(cpName, kubectl(`get node ${cpName} -o 'jsonpath={range .spec.taints[*]}{.key}:{.effect}{"\\n"}{end}'`));
      expect(taints.stdout.split('\n'), `${cpName}'s taints`).toContain('node-role.kubernetes.io/control-plane:NoSchedule');
      const dnsNodes = await systemPodsReady(lab, cpName, 'coredns-', 1);
      expect(new Set(dnsNodes), 'CoreDNS pods on the tainted control plane (its toleration)').toEqual(new Set([cpName]));
      lab.mark('CoreDNS Ready on the tainted control plane');
      await lab.copyJoinMaterial(cpName);
      const wk = await launchedWorker;
      lab.mark('worker receipt');
      expect(wk.code, 'nodeup launch (worker) exit code').toBe(0);
      expectNothingFetched(wkName, await lab.receiptOf(wkName));
      expect(await lab.eventsOf(wkName)).not.toContain('fetching');
      await lab.expectWaitedForJoin(wkName);

      // 4. A working cluster without a registry: both Ready, the baked workload image runs.
      const nodes = await lab.nodesReady(cpName, [cpName, wkName]);
      lab.mark('both nodes Ready');
      const workerPodCidr = nodes.items.find((i) => i.metadata.name === wkName)?.spec.podCIDR ?? '';
      const helloIp = await lab.helloAnswers(cpName, wkName);
      expect(ipInCidr(helloIp, workerPodCidr), `the hello pod's ${helloIp} is in the worker's pod subnet ${workerPodCidr}`).toBe(true);
      // kube-proxy in iptables mode (its images baked in, like CoreDNS's): Services, DNS, NodePort.
      expect((await systemPodsReady(lab, cpName, 'kube-proxy-', 2)).sort()).toEqual([cpName, wkName].sort());
      await systemPodsReady(lab, cpName, 'coredns-', 1);
      const mode = await lab.ssh(cpName, 'iptables-save -t nat | grep -c "^-A KUBE-SERVICES" || true');
      expect(Number(mode.stdout.trim()), 'kube-proxy iptables rules (KUBE-SERVICES) on the control plane').toBeGreaterThan(0);
      await servicesWork(lab, { cp: cpName, clientNode: cpName, helloNode: wkName, helloPodIp: helloIp, nodeIps: { [cpName]: cpIp, [wkName]: wkIp } });
      lab.mark('Services, DNS and pod-to-pod across nodes (kube-proxy iptables mode)');

      // 5. Converged: a second apply changes nothing.
      for (const name of [cpName, wkName]) {
        const again = await lab.applyInGuest(name);
        expect(again.tasks.filter((t) => t.status !== 'unchanged'), `${name}: second apply`).toEqual([]);
      }
      lab.mark('second apply: 0 changes on both');
      await lab.printTimings();
    } catch (err: unknown) {
      await lab.diagnoseAll();
      throw err;
    }
  });
});
