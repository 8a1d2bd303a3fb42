// `packer validate` (Debian's packer 1.6.6, HCL2, builders built in) for every template under
// images/packer, for every distro x arch, with no network (a private network namespace when we
// can make one): the defaults that need the internet (cloud image SUMS files) are overridden.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const setup = 'scripts/boot-paths-deps.sh';
const packerDir = path.resolve('images/packer');
let dir: string;
let isolate: readonly string[] = [];

beforeAll(async () => {
  const found = await execa('sh', ['-c', 'command -v packer'], { reject: false });
  if (found.exitCode !== 0) throw new Error(`packer is missing: run ${setup} (installs Debian's packer)`);
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-packer-'));
  await fsp.writeFile(path.join(dir, 'nodeup'), '#!/bin/sh\n');
  await fsp.writeFile(path.join(dir, 'bake.yaml'), 'apiVersion: nodeup.dev/v1alpha1\nkind: BootConfig\n');
  await fsp.writeFile(path.join(dir, 'base.qcow2'), '');
  // validate must not need the network: run it without one when this machine allows it
  const probe = await execa('unshare', ['-n', 'true'], { reject: false });
  if (probe.exitCode === 0) isolate = ['unshare', '-n'];
});

afterAll(async () => {
  if (dir) await fsp.rm(dir, { recursive: true, force: true });
});

function baseVars(): string[] {
  return ['-var', `bake_config=${dir}/bake.yaml`, '-var', `nodeup_binary=${dir}/nodeup`];
}

const perTemplate: Record<string, string[]> = {
  qemu: ['-var', 'base_image_url=BASE', '-var', `base_image_checksum=sha256:${'0'.repeat(64)}`, '-var', 'accelerator=tcg'],
  aws: ['-var', 'aws_region=eu-west-1'],
  gcp: ['-var', 'gcp_project_id=example-project'],
};

/** packer, inside a network namespace of its own when possible. */
function packer(args: string[]) {
  const opts = { reject: false, all: true, env: { CHECKPOINT_DISABLE: '1' } } as const;
  return isolate.length > 0 ? execa('unshare', ['-n', 'packer', ...args], opts) : execa('packer', args, opts);
}

async function validate(template: string, extra: string[]) {
  const vars = [...baseVars(), ...(perTemplate[template] ?? []).map((v) => v.replace('BASE', `${dir}/base.qcow2`)), ...extra];
  return packer(['validate', ...vars, path.join(packerDir, template)]);
}

describe('packer validate images/packer/*', () => {
  const matrix = ['qemu', 'aws', 'gcp'].flatMap((t) => ['debian-12', 'ubuntu-24.04'].flatMap((d) => ['amd64', 'arm64'].map((a) => [t, d, a] as const)));
  it.each(matrix)('%s %s %s', async (template, distro, arch) => {
    const res = await validate(template, ['-var', `distro=${distro}`, '-var', `arch=${arch}`, '-var', 'kubernetes_version=v1.34.2']);
    expect(res.exitCode, res.all).toBe(0);
  });

  it.each([
    ['distro=centos-7', 'The distro must be debian-12 or ubuntu-24.04'],
    ['arch=riscv64', 'The arch must be amd64 or arm64'],
    ['kubernetes_version=1.35', 'The kubernetes_version must look like v1.35.4'],
  ])('refuses %s', async (bad, message) => {
    const res = await validate('qemu', ['-var', bad]);
    expect(res.exitCode).not.toBe(0);
    expect(res.all).toContain(message);
  });

  it('needs a bake config', async () => {
    const res = await packer(['validate', '-var', `nodeup_binary=${dir}/nodeup`, '-var', 'aws_region=eu-west-1', path.join(packerDir, 'aws')]);
    expect(res.exitCode).not.toBe(0);
    expect(res.all).toMatch(/bake_config/);
  });

  it('templates are packer-fmt clean and the bake script is shellcheck clean', async () => {
    for (const t of ['shared', 'qemu', 'aws', 'gcp']) {
      const res = await execa('packer', ['fmt', '-check', path.join(packerDir, t)], { reject: false, all: true });
      expect(res.exitCode, `${t}: ${res.all}`).toBe(0);
    }
    const sc = await execa('sh', ['-c', 'command -v shellcheck'], { reject: false });
    if (sc.exitCode !== 0) throw new Error(`shellcheck is missing: run ${setup}`);
    const res = await execa('shellcheck', [path.join(packerDir, 'scripts/bake.sh')], { reject: false, all: true });
    expect(res.exitCode, res.all).toBe(0);
  });
});
