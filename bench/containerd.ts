// Figures for the container runtime part (prints them; no assertions):
//  - containerd start until `ctr version` answers, with the config nodeup renders (private root);
//  - importing a ~32 MiB image archive (docker format, plain and zstd) through the image task;
//  - pulling the same image through a registry mirror (docker-registry on 127.0.0.1) via the CRI.
// Needs what the integration tests need (scripts/setup.sh). Usage: node bench/containerd.ts [starts]
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { NodeHost } from '../src/engine/host/node-host.ts';
import { silentLogger } from '../src/engine/log.ts';
import { containerdConfigInput, containerdFiles } from '../src/containerd/component.ts';
import { modelFromCase } from '../tests/support/containerd-model.ts';
import { ImageTask } from '../src/images/image-task.ts';
import {
  containerd2,
  crictlBinary,
  debianContainerd,
  makeTinyImage,
  pushWithSkopeo,
  startContainerd,
  startRegistry,
  type ContainerdBinaries,
} from '../tests/integration/containerd-harness.ts';

const execFileP = promisify(execFile);
const starts = Number(process.argv[2] ?? 5);
const median = (xs: number[]): string => `${[...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]?.toFixed(0)} ms`;
const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bench-ctd-'));
const ref = 'registry.example.test/bench/big:1.0';
console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load ${os.loadavg()[0]?.toFixed(1)}`);
const img = await makeTinyImage(path.join(work, 'img'), ref, randomBytes(24 * 1024 * 1024).toString('base64'));
await execFileP('zstd', ['-q', img.dockerArchive, '-o', `${img.dockerArchive}.zst`]);
const sizes = `${((await fsp.stat(img.dockerArchive)).size / 2 ** 20).toFixed(1)} MiB plain, ${((await fsp.stat(`${img.dockerArchive}.zst`)).size / 2 ** 20).toFixed(1)} MiB zstd`;
const registry = await startRegistry();
await pushWithSkopeo(img.layoutDir, ref, `${registry.hostPort}/bench/big:1.0`);

try {
  for (const bins of [await debianContainerd(), await containerd2()] as ContainerdBinaries[]) {
    const config = {
      apiVersion: 'nodeup.dev/v1alpha1',
      kind: 'NodeConfig',
      metadata: { cluster: 'c', instanceGroup: 'nodes' },
      spec: { role: 'worker', apiServerEndpoint: 'https://10.0.0.10:6443', containerd: { version: bins.version, registryMirrors: { 'registry.example.test': [registry.url] } } },
    };
    const model = modelFromCase(yaml.dump({ config }), 'bench');
    const files: Record<string, string> = {};
    for (const f of containerdFiles(model)) {
      const m = /^\/etc\/containerd\/(certs\.d\/.+)$/.exec(f.path);
      if (m?.[1]) files[m[1]] = f.content;
    }
    const startMs: number[] = [];
    for (let i = 0; i < starts; i++) {
      const t = performance.now();
      const inst = await startContainerd({ bins, input: containerdConfigInput(model), files });
      startMs.push(performance.now() - t);
      await inst.stop();
    }
    console.log(`${bins.label}: start to ctr version answering: median ${median(startMs)} of ${starts}`);

    for (const [label, file] of [['plain', img.dockerArchive], ['zstd', `${img.dockerArchive}.zst`]] as const) {
      const inst = await startContainerd({ bins, input: containerdConfigInput(model), files });
      const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bench-root-'));
      try {
        const host = new NodeHost({ root, log: silentLogger });
        const sha256 = createHash('sha256').update(await fsp.readFile(file)).digest('hex');
        const task = new ImageTask({ name: ref, source: { kind: 'archive', asset: { name: 'bench', urls: [pathToFileURL(file).href], sha256 } }, ctr: bins.ctr, crictl: crictlBinary(), address: inst.socket, live: true });
        let t = performance.now();
        await task.apply(host);
        const importMs = performance.now() - t;
        t = performance.now();
        const converged = task.diff(await task.observe(host)).length === 0;
        const observeMs = performance.now() - t;
        console.log(`${bins.label}: import ${label} archive (${sizes}): ${importMs.toFixed(0)} ms incl. verify+cache; converged observe ${observeMs.toFixed(0)} ms (${converged ? 'no change' : 'CHANGE?'})`);
      } finally {
        await inst.stop();
        await fsp.rm(root, { recursive: true, force: true });
      }
    }

    const inst = await startContainerd({ bins, input: containerdConfigInput(model), files });
    try {
      const host = new NodeHost({ root: work, log: silentLogger });
      const task = new ImageTask({ name: ref, source: { kind: 'pull' }, ctr: bins.ctr, crictl: crictlBinary(), address: inst.socket, live: true });
      const t = performance.now();
      await task.apply(host);
      console.log(`${bins.label}: pull through the mirror via CRI (same image): ${(performance.now() - t).toFixed(0)} ms`);
    } finally {
      await inst.stop();
    }
  }
} finally {
  await registry.stop();
  await fsp.rm(work, { recursive: true, force: true });
}
