// The bake manifest (/etc/nodeup/bake-manifest.json): what a baked image holds, so an operator (or
// a test) can check that a node booted from it needs no downloads and no package installs. Pure.
import type { RunReport } from '../engine/executor.ts';
import type { NodeModel } from '../model/node-model.ts';
import type { SealResult } from './seal.ts';
import { compareText } from '../engine/text-order.ts';

export const bakeManifestPath = '/etc/nodeup/bake-manifest.json';

export interface CachedAsset {
  readonly name: string;
  readonly sha256: string;
  readonly bytes: number;
}

export interface BakeManifest {
  readonly apiVersion: 'nodeup.dev/v1alpha1';
  readonly kind: 'BakeManifest';
  readonly nodeupVersion: string;
  /** SHA-256 of the nodeup binary installed in the image (user-data pins the same hash). */
  readonly nodeupSha256: string | null;
  readonly bakedAt: string;
  readonly cluster: string;
  readonly instanceGroup: string;
  readonly configHash: string;
  readonly kubernetesVersion: string;
  readonly distro: string;
  readonly arch: string;
  readonly role: string;
  /** Files in nodeup's content-addressed cache, by name where the model knows it. */
  readonly assets: readonly CachedAsset[];
  /** Image tasks of the bake run (side-loaded or pulled into containerd). */
  readonly images: readonly string[];
  /** Package tasks of the bake run. */
  readonly packages: readonly string[];
  readonly units: readonly string[];
  readonly tasks: { readonly total: number; readonly changed: number };
  readonly sealed: { readonly removed: readonly string[]; readonly truncated: readonly string[] };
}

export interface ManifestInput {
  readonly model: NodeModel;
  readonly report: RunReport;
  readonly nodeupVersion: string;
  readonly nodeupSha256: string | undefined;
  readonly bakedAt: number;
  /** sha256 -> size of each file in the asset cache. */
  readonly cache: ReadonlyMap<string, number>;
  /** sha256 -> name, for the assets the model resolves. */
  readonly assetNames: ReadonlyMap<string, string>;
  readonly seal: SealResult;
}

function keysOf(report: RunReport, kind: string): string[] {
  return report.results
    .map((r) => r.key)
    .filter((k) => k.startsWith(`${kind}:`))
    .map((k) => k.slice(kind.length + 1))
    .sort();
}

export function buildBakeManifest(i: ManifestInput): BakeManifest {
  const assets = [...i.cache.entries()]
    .map(([sha256, bytes]) => ({ name: i.assetNames.get(sha256) ?? 'unknown', sha256, bytes }))
    .sort((a, b) => compareText(a.name, b.name) || compareText(a.sha256, b.sha256));
  return {
    apiVersion: 'nodeup.dev/v1alpha1',
    kind: 'BakeManifest',
    nodeupVersion: i.nodeupVersion,
    nodeupSha256: i.nodeupSha256 ?? null,
    bakedAt: new Date(i.bakedAt).toISOString(),
    cluster: i.model.boot.clusterName,
    instanceGroup: i.model.boot.instanceGroup,
    configHash: i.model.boot.nodeConfigHash,
    kubernetesVersion: i.model.versions.kubernetes,
    distro: i.model.distro.id,
    arch: i.model.facts.arch,
    role: i.model.spec.role,
    assets,
    images: keysOf(i.report, 'image'),
    packages: keysOf(i.report, 'package'),
    units: keysOf(i.report, 'unit'),
    tasks: { total: i.report.results.length, changed: i.report.changed },
    sealed: { removed: [...i.seal.removed].sort(), truncated: [...i.seal.truncated].sort() },
  };
}

export function renderBakeManifest(m: BakeManifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}
