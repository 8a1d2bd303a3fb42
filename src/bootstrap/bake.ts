// `nodeup bake`: prepare a machine image. The same run as `apply` in bake mode (packages installed,
// every asset downloaded into the cache, container images side-loaded; components skip what
// depends on the node's identity), then the nodeup binary and nodeup.service are installed, the
// image is sealed (machine-id, cloud-init state, SSH host keys, logs, shell history) and a bake
// manifest is written. A node booted from the image then converges with zero downloads and zero
// package installs; its user-data finds the pinned binary already in place.
import { isSea } from 'node:sea';
import type { Command } from '../app/cli.ts';
import { AgentError, errorForLog, errorMessage, exitCodeFor } from '../engine/errors.ts';
import { execute, type RunReport } from '../engine/executor.ts';
import { Graph } from '../engine/graph.ts';
import { assetCacheDir, type Host } from '../engine/host/host.ts';
import { modelAsset, type NodeModel } from '../model/node-model.ts';
import { renderPlan } from '../engine/plan-printer.ts';
import { receiptPath } from '../app/receipt.ts';
import { runNode, type RunOutcome, type RunRequest } from '../app/run.ts';
import { nodeupVersion } from '../app/version.ts';
import { assetNames } from '../model/assets/versions.ts';
import { nodeupUnitTask } from '../app/nodeup-unit.ts';
import { nodeRunFlags } from '../app/commands.ts';
import { bakeManifestPath, buildBakeManifest, renderBakeManifest, type BakeManifest } from './bake-manifest.ts';
import { defaultBootConfigPath, defaultInstallPath } from './render-userdata.ts';
import { applySeal, sealSteps } from './seal.ts';

/** A bake is a run in bake mode (same inputs) plus what goes into the image around it. */
export interface BakeRequest extends Omit<RunRequest, 'mode' | 'publishReceipt'> {
  /** Host path of the nodeup binary to install into the image (default: none, keep what is there). */
  readonly selfBinary?: string;
  /** Node path of the binary nodeup.service runs. */
  readonly binaryPath?: string;
  /** Node path of the boot config nodeup.service reads (written by user-data at first boot). */
  readonly bootConfigPath?: string;
  /** Enable nodeup.service in the image; by default user-data's install-unit enables and starts it at first boot. */
  readonly enableUnit?: boolean;
  readonly keepBootConfig?: boolean;
  readonly seal?: boolean;
}

export interface BakeOutcome {
  readonly run: RunOutcome;
  readonly unitReport?: RunReport;
  readonly manifest?: BakeManifest;
  readonly error?: unknown;
}

/** sha256 -> name for every asset and image archive the model resolves. Pure. */
export function knownAssetNames(model: NodeModel): Map<string, string> {
  const names = new Map<string, string>();
  for (const n of assetNames) {
    try {
      names.set(modelAsset(model, n).sha256, n);
    } catch {
      // no pinned hash for this asset on this arch/version: it cannot be in the cache by name
    }
  }
  for (const a of model.spec.images.archives) names.set(a.sha256, `image ${a.name}`);
  return names;
}

async function cacheContents(host: Host): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of await host.fs.list(assetCacheDir)) {
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const st = await host.fs.stat(`${assetCacheDir}/${name}`);
    if (st?.kind === 'file') out.set(name, st.size);
  }
  return out;
}

export async function bakeNode(req: BakeRequest): Promise<BakeOutcome> {
  const { host, log } = req;
  const binaryPath = req.binaryPath ?? defaultInstallPath;
  const bootConfigPath = req.bootConfigPath ?? defaultBootConfigPath;
  log.info({ root: host.root }, 'bake: converging the image (bake mode)');
  const run = await runNode({
    mode: 'bake',
    host,
    log,
    bootConfig: req.bootConfig,
    ...(req.only ? { only: req.only } : {}),
    ...(req.skip ? { skip: req.skip } : {}),
    ...(req.ignorePreflight ? { ignorePreflight: req.ignorePreflight } : {}),
    ...(req.facts ? { facts: req.facts } : {}),
    ...(req.components ? { components: req.components } : {}),
    ...(req.waitForLock !== undefined ? { waitForLock: req.waitForLock } : {}),
    publishReceipt: false,
  });
  if (run.error !== undefined || !run.report?.ok || !run.model) {
    const error = run.error ?? new AgentError('TASK_FAILED', `bake: ${run.report?.failed ?? 0} task(s) failed, ${run.report?.blocked ?? 0} blocked: the image is not sealed`, { details: { failed: run.report?.failed, blocked: run.report?.blocked } });
    return { run, error };
  }
  const model = run.model;
  try {
    if (req.selfBinary) {
      log.info({ from: req.selfBinary, to: binaryPath }, 'bake: installing the nodeup binary');
      await host.fs.mkdirp(binaryPath.slice(0, binaryPath.lastIndexOf('/')) || '/', 0o755);
      await host.fs.installFile(req.selfBinary, binaryPath, { mode: 0o755 });
    }
    const nodeupSha256 = await host.hashFile(binaryPath);
    if (!nodeupSha256) log.warn({ binary: binaryPath }, 'bake: no nodeup binary in the image; user-data will download it at boot');

    const graph = new Graph();
    graph.setOwner('bake');
    graph.add(nodeupUnitTask({ binary: binaryPath, config: bootConfigPath, unitDir: '/etc/systemd/system', enabled: req.enableUnit ?? false }));
    const unitReport = await execute(graph.finish(), host, { mode: 'apply', log, owner: graph.owner });
    if (!unitReport.ok) return { run, unitReport, error: new AgentError('TASK_FAILED', 'bake: cannot install nodeup.service') };

    // Bytes of downloads that stopped (<hash>.partial, kept to resume) are not the image's to carry.
    const parts = (await host.fs.list(assetCacheDir)).filter((n) => n.endsWith('.partial')).map((n) => `${assetCacheDir}/${n}`);
    const seal = req.seal === false ? { removed: [], truncated: [] } : await applySeal(host, sealSteps({ ...(req.keepBootConfig ? {} : { bootConfigPath }), extraRemovals: [receiptPath, ...parts] }), log);
    const manifest = buildBakeManifest({
      model,
      report: run.report,
      nodeupVersion,
      nodeupSha256,
      bakedAt: host.now(),
      cache: await cacheContents(host),
      assetNames: knownAssetNames(model),
      seal,
    });
    await host.fs.mkdirp('/etc/nodeup', 0o755);
    await host.fs.writeAtomic(bakeManifestPath, renderBakeManifest(manifest), { mode: 0o644 });
    log.info({ manifest: bakeManifestPath, assets: manifest.assets.length, images: manifest.images.length, packages: manifest.packages.length }, 'bake: image ready');
    return { run, unitReport, manifest };
  } catch (err: unknown) {
    return { run, error: err };
  }
}

export const bakeCommand: Command = {
  name: 'bake',
  summary: 'prepare a machine image: install and cache everything, install nodeup.service, seal, write a bake manifest',
  usage: 'nodeup bake --config FILE [--root DIR] [--self FILE] [--enable-unit] [--keep-boot-config] [--no-seal] [--only C] [--skip C] [--no-wait]',
  options: {
    self: { type: 'string' },
    binary: { type: 'string', default: defaultInstallPath },
    'boot-config-path': { type: 'string', default: defaultBootConfigPath },
    'enable-unit': { type: 'boolean' },
    'keep-boot-config': { type: 'boolean' },
    'no-seal': { type: 'boolean' },
    'no-wait': { type: 'boolean' },
    'ignore-preflight': { type: 'string', multiple: true },
    json: { type: 'boolean' },
  },
  async run(ctx) {
    const self = typeof ctx.values.self === 'string' ? ctx.values.self : isSea() ? process.execPath : undefined;
    const out = await bakeNode({
      ...nodeRunFlags(ctx),
      ...(self ? { selfBinary: self } : {}),
      binaryPath: String(ctx.values.binary),
      bootConfigPath: String(ctx.values['boot-config-path']),
      enableUnit: Boolean(ctx.values['enable-unit']),
      keepBootConfig: Boolean(ctx.values['keep-boot-config']),
      seal: !ctx.values['no-seal'],
      waitForLock: ctx.values['no-wait'] !== true,
    });
    if (out.run.report) ctx.out(ctx.values.json ? JSON.stringify(out.run.report, null, 2) + '\n' : renderPlan(out.run.report));
    if (out.error !== undefined) {
      ctx.log.error({ err: errorForLog(out.error) }, 'bake failed');
      process.stderr.write(`nodeup bake: ${errorMessage(out.error)}\n`);
      return exitCodeFor(out.error);
    }
    if (out.manifest && !ctx.values.json) {
      const m = out.manifest;
      ctx.out(`bake manifest ${bakeManifestPath}: ${m.assets.length} cached asset(s), ${m.images.length} image(s), ${m.packages.length} package(s); sealed ${m.sealed.removed.length} removed, ${m.sealed.truncated.length} truncated\n`);
    }
    return 0;
  },
};
