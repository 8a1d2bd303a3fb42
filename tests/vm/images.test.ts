// The local registry the cluster scenario's guests use as their registry.k8s.io mirror: the storage
// scripts/vm/images.sh filled, served by a real docker-registry on 127.0.0.1, answers the OCI
// distribution API with the manifests images.env names, and their layers hold the binaries.
import * as fsp from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryStorage, serveRegistry, type RunningRegistry } from './harness.ts';

let reg: RunningRegistry | undefined;
let images: { name: string; tag: string; digest: string }[] = [];

describe('local registry (scripts/vm/images.sh)', () => {
  beforeAll(async () => {
    const env = await fsp.readFile(`${registryStorage}/images.env`, 'utf8').catch(() => {
      throw new Error(`no registry storage at ${registryStorage}: run bash scripts/vm/setup.sh (it runs scripts/vm/images.sh)`);
    });
    images = env.split('\n').filter((l) => l.startsWith('IMAGE_')).map((l) => {
      const m = /^IMAGE_\w+=([^:]+):([^@]+)@(sha256:[0-9a-f]{64})$/.exec(l);
      if (!m) throw new Error(`images.env: cannot parse ${l}`);
      return { name: m[1]!, tag: m[2]!, digest: m[3]! };
    });
    reg = await serveRegistry(`${registryStorage}/storage`);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('serves pause and etcd (and the control plane when built) by tag, with the built digests', async () => {
    expect(images.map((i) => i.name)).toEqual(expect.arrayContaining(['pause', 'etcd']));
    for (const i of images) {
      const res = await fetch(`${reg!.url}/v2/${i.name}/manifests/${i.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(res.status, `${i.name}:${i.tag}`).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(i.digest);
    }
  });

  it('holds the etcd binaries in the etcd image layer', async () => {
    const etcd = images.find((i) => i.name === 'etcd')!;
    const manifest = (await (await fetch(`${reg!.url}/v2/etcd/manifests/${etcd.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string }[] };
    const blob = await fetch(`${reg!.url}/v2/etcd/blobs/${manifest.layers[0]!.digest}`);
    const names: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const parser = new tar.Parser({ onReadEntry: (e) => { names.push(e.path); e.resume(); } });
      parser.on('end', resolve);
      parser.on('error', reject);
      Readable.fromWeb(blob.body as import('node:stream/web').ReadableStream).pipe(createGunzip()).pipe(parser);
    });
    expect(names).toEqual(expect.arrayContaining(['./usr/local/bin/etcd', './usr/local/bin/etcdctl', './usr/local/bin/etcdutl']));
  });
});
