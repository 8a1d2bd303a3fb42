// The real containerd accepts every config nodeup renders: Debian's 1.6 reads the version 2 schema,
// a 2.x built from the Go module proxy reads version 3. Each runs with a private root, state and
// socket; `ctr version` must answer, the CRI plugin must load, and `containerd config dump` must
// show nodeup's settings (sandbox image, systemd cgroups, certs.d, the drop-in) took effect. And the
// per-node bridge network: given the pod CIDR over CRI UpdateRuntimeConfig (what kubelet sends),
// containerd writes the CNI config from nodeup's template.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { containerdConfigInput, containerdFiles } from '../../src/containerd/component.ts';
import { configSchemaFor } from '../../src/containerd/render-config.ts';
import { loadCase } from '../support/containerd-model.ts';
import { containerd2, debianContainerd, startContainerd, type ContainerdBinaries } from './containerd-harness.ts';

const execFileP = promisify(execFile);
const cases = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/containerd/testdata');

/** conf.d and certs.d files and the CNI template the component renders, relative to the private dir. */
async function privateFiles(caseName: string): Promise<Record<string, string>> {
  const model = await loadCase(path.join(cases, caseName, 'model.yaml'));
  const out: Record<string, string> = {};
  for (const f of containerdFiles(model)) {
    const m = /^\/etc\/containerd\/((conf\.d|certs\.d)\/.+|[^/]+\.tmpl)$/.exec(f.path);
    if (m?.[1]) out[m[1]] = f.content;
  }
  return out;
}

/** A protobuf length-delimited field (wire type 2). */
function pbField(field: number, value: Buffer): Buffer {
  const len: number[] = [];
  let n = value.length;
  while (n > 127) {
    len.push((n & 127) | 128);
    n >>>= 7;
  }
  len.push(n);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), value]);
}

/**
 * What kubelet does once its Node has spec.podCIDR: CRI RuntimeService/UpdateRuntimeConfig with
 * runtime_config.network_config.pod_cidr, as one gRPC call over HTTP/2 on containerd's socket.
 */
async function updateRuntimeConfig(socket: string, podCidr: string): Promise<void> {
  const msg = pbField(1, pbField(1, pbField(1, Buffer.from(podCidr))));
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), msg]);
  frame.writeUInt32BE(msg.length, 1);
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  try {
    const status = await new Promise<string>((resolve, reject) => {
      const req = session.request({ ':method': 'POST', ':path': '/runtime.v1.RuntimeService/UpdateRuntimeConfig', 'content-type': 'application/grpc', te: 'trailers' });
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      const take = (h: http2.IncomingHttpHeaders): void => {
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(h['grpc-message']));
      };
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', () => undefined);
      req.on('error', reject);
      req.on('end', () => (grpcStatus === '0' ? resolve(grpcStatus) : reject(new Error(`UpdateRuntimeConfig: grpc-status ${grpcStatus ?? '?'} ${grpcMessage}`))));
      req.end(frame);
    });
    expect(status).toBe('0');
  } finally {
    session.close();
  }
}

const matrix: readonly [string, () => Promise<ContainerdBinaries>, readonly string[]][] = [
  ['Debian containerd 1.6 (schema 2)', debianContainerd, ['worker-1.33', 'control-plane-1.33', 'worker-1.7-mirrors-nvidia', 'worker-distro-external-cni']],
  ['containerd 2.x from the Go module proxy (schema 3)', containerd2, ['worker-1.35', 'control-plane-1.35', 'worker-2.x-mirrors-nvidia', 'worker-flatcar']],
];

describe.each(matrix)('%s', (_label, binaries, caseNames) => {
  it('renders the bridge network from nodeup\'s template with the pod CIDR kubelet sends (per-node pod subnets)', async () => {
    const bins = await binaries();
    const caseName = caseNames[0] as string;
    const model = await loadCase(path.join(cases, caseName, 'model.yaml'));
    expect(model.spec.networking.bridge.podSubnet).toBe('per-node');
    const input = containerdConfigInput(model);
    expect(input.cniConfTemplate).toBe('/etc/containerd/nodeup-bridge.conflist.tmpl');
    const files = await privateFiles(caseName);
    expect(Object.keys(files)).toContain('nodeup-bridge.conflist.tmpl');
    const inst = await startContainerd({ bins, input, files });
    try {
      const { stdout: dump } = await execFileP(bins.containerd, ['--config', inst.configPath, 'config', 'dump'], { maxBuffer: 16 * 1024 * 1024 });
      expect(dump).toMatch(new RegExp(`conf_template = ["']${path.join(inst.dir, 'nodeup-bridge.conflist.tmpl').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']`));
      const generated = path.join(inst.dir, 'net.d', '10-containerd-net.conflist');
      expect(existsSync(generated)).toBe(false);

      await updateRuntimeConfig(inst.socket, '10.244.3.0/24');
      const conf = JSON.parse(await fsp.readFile(generated, 'utf8')) as { name: string; plugins: { type: string; bridge?: string; ipam?: unknown }[] };
      expect(conf.name).toBe('nodeup-bridge');
      expect(conf.plugins.map((p) => p.type)).toEqual(['bridge', 'portmap']);
      expect(conf.plugins[0]).toMatchObject({ bridge: 'cni0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] } });
    } finally {
      await inst.stop();
    }
  });

  it.each(caseNames)('accepts the config of case %s', async (caseName) => {
    const bins = await binaries();
    const model = await loadCase(path.join(cases, caseName, 'model.yaml'));
    const input = containerdConfigInput(model);
    // The case's containerd version must be in the same schema as the binary we run.
    expect(configSchemaFor(input.version)).toBe(configSchemaFor(bins.version));
    const files = await privateFiles(caseName);
    const inst = await startContainerd({ bins, input, files });
    try {
      const version = await inst.ctr(['version']);
      expect(version).toMatch(new RegExp(`Server:[\\s\\S]*Version:\\s+v?${bins.version.replaceAll('.', '\\.')}`));

      // The CRI plugin loaded (not skipped, no error) with nodeup's config.
      const plugins = await inst.ctr(['plugins', 'ls']);
      const cri = plugins.split('\n').filter((l) => /\bcri\b|io\.containerd\.cri\.v1/.test(l));
      expect(cri.length).toBeGreaterThan(0);
      for (const l of cri) expect(l).toMatch(/\sok\s*$/);

      // What containerd made of the config (imports merged).
      const { stdout: dump } = await execFileP(bins.containerd, ['--config', inst.configPath, 'config', 'dump'], { maxBuffer: 16 * 1024 * 1024 });
      // 1.6 dumps "double-quoted" strings, 2.x 'single-quoted' ones.
      const q = (s: string): string => `["']${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']`;
      expect(dump).toMatch(new RegExp(`${configSchemaFor(bins.version) === 2 ? 'sandbox_image' : 'sandbox'} = ${q(input.sandboxImage)}`));
      expect(dump).toMatch(/SystemdCgroup = true/);
      // Pulled layers are synced to disk (2.x; Debian's 1.6 does not know the key and ignores it).
      if (configSchemaFor(bins.version) === 3) expect(dump).toMatch(/image_pull_with_sync_fs = true/);
      expect(dump).toMatch(new RegExp(`config_path = ${q(inst.certsDir)}`));
      expect(dump).toMatch(new RegExp(`root = ${q(path.join(inst.dir, 'root'))}`));
      if (Object.keys(files).some((f) => f.startsWith('conf.d/'))) {
        // the drop-in (or nvidia.default) makes nvidia the default runtime
        expect(dump).toMatch(new RegExp(`default_runtime_name = ${q('nvidia')}`));
        expect(dump).toMatch(new RegExp(`BinaryName = ${q('/usr/bin/nvidia-container-runtime')}`));
      } else if (!caseName.includes('nvidia')) {
        expect(dump).toMatch(new RegExp(`default_runtime_name = ${q('runc')}`));
      }
    } finally {
      await inst.stop();
    }
  });
});
