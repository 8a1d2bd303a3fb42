// One run of the agent: boot config -> state store -> node config (hash checked) -> host facts ->
// model -> task graph -> preflight -> plan or apply -> receipt.
import { components as allComponents } from './components.ts';
import { checkIgnoreFlags, componentProblems } from './config-check.ts';
import type { Component } from '../model/component.ts';
import { checkNodeConfig, configInvalid, parseBootConfig, type BootConfig } from '../model/config.ts';
import { formatProblem, pairProblems } from '../model/validate.ts';
import { AgentError, errorMessage, exitCodeFor, summarizeError } from '../engine/errors.ts';
import { execute, type Mode, type RunReport } from '../engine/executor.ts';
import { Graph } from '../engine/graph.ts';
import { convergedVersionOf, readHostFacts, type HostFacts } from '../engine/host/facts.ts';
import type { Host } from '../engine/host/host.ts';
import { readLocalFile } from '../engine/host/local.ts';
import type { Logger } from '../engine/log.ts';
import { deriveNodeModel, type NodeModel } from '../model/node-model.ts';
import { assertPreflight, runPreflight, type PreflightResult } from './preflight.ts';
import { buildReceipt, capiSentinel, readySentinel, receiptPath, type Receipt } from './receipt.ts';
import { nodeupVersion } from './version.ts';
import { openStateStore } from '../statestore/open.ts';
import { storeLayout, type StateStore } from '../engine/state-store.ts';
import { loadNodeSecrets } from '../model/node-secrets.ts';
import { takeRunLock, type RunLock } from '../engine/run-lock.ts';
import { renderMetrics } from './metrics.ts';
import { lastGoodConfigPath, readLastGood, saveLastGood, type LastGoodRecord } from './last-good.ts';
import { afterWalk, beforeWalk, type DrainGuard } from './drain-guard.ts';
import type { Disruption } from './receipt.ts';
import '../statestore/backends.ts';

export interface RunRequest {
  readonly mode: Mode | 'bake';
  readonly host: Host;
  readonly log: Logger;
  /** Path of the boot config on this machine, or its parsed content. */
  readonly bootConfig: string | BootConfig;
  readonly only?: readonly string[];
  readonly skip?: readonly string[];
  readonly ignorePreflight?: readonly string[];
  /** Replaces readHostFacts (tests). */
  readonly facts?: HostFacts;
  readonly components?: readonly Component[];
  /** Publish the receipt to the state store (default: in apply and bake). */
  readonly publishReceipt?: boolean;
  /** apply on a worker: how long to wait for the cluster CA and bootstrap token in the state store (node-secrets.ts); 0 or unset: no wait. */
  readonly joinTimeoutMs?: number;
  /** apply and bake: false stops at once when another nodeup run holds the node's run lock (run-lock.ts); default: wait for it. */
  readonly waitForLock?: boolean;
  /** apply: where to write the run's Prometheus metrics (metrics.ts); unset or '': none (the CLI's default is defaultMetricsFile). */
  readonly metricsFile?: string;
  /** apply: converge to the node's last good config (last-good.ts) instead of the one the state store holds. */
  readonly rollback?: boolean;
  /**
   * apply: cordon and drain a registered Node before restarting its running kubelet or containerd,
   * uncordon when it is Ready again (drain-guard.ts); `enabled: false` restarts without a drain.
   * Unset: no guard (bake, tests on scratch roots).
   */
  readonly drain?: { readonly enabled: boolean; readonly timeoutMs: number; /** how long the Node may take to be Ready after the change (default drain-guard's readyTimeoutMs) */ readonly readyTimeoutMs?: number };
  /**
   * apply: when the walk fails, or the Node is not Ready after the change, converge at once to the
   * node's last good config (last-good.ts) and say so in the receipt (`rolledBackFrom`,
   * `rollbackReason`). Not when the failing config is the last good one, nor for a run refused
   * before its walk (it changed nothing).
   */
  readonly rollbackOnFailure?: boolean;
}

/** How an automatic rollback came about: the failed run's config hash and error. */
export interface AutoRollback {
  readonly from: string;
  readonly reason: string;
}

export interface RunOutcome {
  readonly report?: RunReport;
  readonly model?: NodeModel;
  readonly preflight?: readonly PreflightResult[];
  readonly receipt?: Receipt;
  readonly notes?: readonly string[];
  readonly error?: unknown;
  /** Set when this outcome is an automatic rollback's (rollbackOnFailure): what failed first. */
  readonly autoRollback?: AutoRollback;
}

export async function loadBoot(input: string | BootConfig): Promise<BootConfig> {
  if (typeof input !== 'string') return input;
  return parseBootConfig(await readLocalFile(input, 'boot config'), input);
}

export function selectComponents(list: readonly Component[], only: readonly string[] = [], skip: readonly string[] = []): readonly Component[] {
  const names = new Set(list.map((c) => c.name));
  for (const n of [...only, ...skip]) {
    if (!names.has(n)) {
      throw new AgentError('USAGE', `unknown component ${n}; components: ${[...names].join(', ')}`, { details: { component: n } });
    }
  }
  return list.filter((c) => (only.length === 0 || only.includes(c.name)) && !skip.includes(c.name));
}

export function buildGraph(model: NodeModel, comps: readonly Component[]): Graph {
  const graph = new Graph();
  for (const c of comps) {
    if (!c.enabled(model)) continue;
    graph.setOwner(c.name);
    c.build(model, graph);
  }
  return graph;
}

/** The boot config's state store (opened, not read: a bad URL throws here). */
export function storeOf(req: RunRequest, boot: BootConfig): StateStore {
  return openStateStore(boot.stateStore, { s3: boot.s3, log: req.log });
}

export async function loadModel(
  req: RunRequest,
  boot: BootConfig,
  opened?: StateStore,
  /** The NodeConfig bytes and where they came from, when not from the store (a rollback). */
  local?: { raw: Buffer; source: string },
): Promise<{ model: NodeModel; store: StateStore; raw: Buffer }> {
  const store = opened ?? storeOf(req, boot);
  const key = storeLayout.nodeConfig(boot.instanceGroup);
  const raw = local?.raw ?? (await store.read(key));
  if (!raw) {
    throw new AgentError('STATE_STORE', `state store ${boot.stateStore} has no ${key}: was the instance group ${boot.instanceGroup} published?`, {
      details: { store: boot.stateStore, key },
    });
  }
  const source = local?.source ?? `${boot.stateStore}/${key}`;
  const checked = checkNodeConfig(raw, source, boot.nodeConfigHash);
  const config = checked.config;
  if (config === undefined) throw configInvalid(source, checked.problems);
  const problems = [...checked.problems, ...pairProblems(boot, config).map(formatProblem)];
  if (problems.length > checked.problems.length) throw configInvalid(source, problems);
  const hostFacts = req.facts ?? (await readHostFacts(req.host));
  // A worker's apply checks its kubelet against the control planes' versions (VersionSkew).
  const facts = req.mode === 'apply' && config.spec.role === 'worker' ? { ...hostFacts, controlPlaneVersions: await controlPlaneVersions(store, req.log) } : hostFacts;
  // Only a run that sets up the kubelet needs the join material (a --only node-files run does not).
  const needsJoin = req.mode === 'apply' && !!req.joinTimeoutMs && selectComponents(req.components ?? allComponents, req.only, req.skip).some((c) => c.name === 'kubelet');
  const wait = needsJoin ? { timeoutMs: req.joinTimeoutMs ?? 0, sleep: (ms: number) => req.host.sleep(ms), now: () => req.host.now(), log: req.log } : undefined;
  const secrets = await loadNodeSecrets(store, config.spec.role, wait);
  let model: NodeModel;
  try {
    model = deriveNodeModel({ boot, config, facts, secrets, live: req.host.root === '/', bake: req.mode === 'bake' });
  } catch (err: unknown) {
    if (problems.length === 0 || exitCodeFor(err) !== 2) throw err;
    throw configInvalid(source, [...problems, errorMessage(err)]);
  }
  // The rules that need the components, with the document's: every problem in one message.
  const registry = req.components ?? allComponents;
  problems.push(...componentProblems(model, registry).map(formatProblem));
  if (problems.length > 0) throw configInvalid(source, problems);
  return { model, store, raw };
}

/** The versions the cluster's control planes recorded when they last converged; none when the store cannot say. */
export async function controlPlaneVersions(store: StateStore, log: Logger): Promise<{ node: string; version: string }[]> {
  // A read-only store (https://) holds no records: control planes cannot write there.
  if (!store.writable) return [];
  try {
    const out: { node: string; version: string }[] = [];
    for (const key of await store.list(storeLayout.controlPlanes)) {
      const raw = await store.read(key);
      const rec = raw ? (JSON.parse(raw.toString('utf8')) as { node?: unknown; kubernetesVersion?: unknown }) : undefined;
      if (typeof rec?.node === 'string' && typeof rec.kubernetesVersion === 'string' && /^v\d+\.\d+\./.test(rec.kubernetesVersion)) {
        out.push({ node: rec.node, version: rec.kubernetesVersion });
      }
    }
    return out;
  } catch (err: unknown) {
    log.warn({ err }, 'cannot read the control planes\' versions from the state store: the worker version-skew check is skipped');
    return [];
  }
}

/** A control plane that converged records its version for the workers' skew check (written only when it changed). */
async function recordControlPlane(store: StateStore, node: string, kubernetesVersion: string, at: string, log: Logger): Promise<void> {
  try {
    const key = storeLayout.controlPlane(node);
    const old = (await store.read(key))?.toString('utf8');
    if (old && (JSON.parse(old) as { kubernetesVersion?: string }).kubernetesVersion === kubernetesVersion) return;
    await store.write(key, JSON.stringify({ node, kubernetesVersion, convergedAt: at }, null, 2) + '\n');
  } catch (err: unknown) {
    log.warn({ err }, 'cannot record this control plane\'s version in the state store');
  }
}

/** One run; apply and bake hold the node's run lock (run-lock.ts) for all of it, receipt included. */
export async function runNode(req: RunRequest): Promise<RunOutcome> {
  if (req.mode === 'plan') return runNodeUnlocked(req);
  let lock: RunLock;
  try {
    lock = await takeRunLock({ host: req.host, mode: req.mode, wait: req.waitForLock ?? true, log: req.log });
  } catch (err: unknown) {
    // Another run owns this node and its receipt: report, write nothing.
    return { error: err };
  }
  try {
    let last: { raw: Buffer; record: LastGoodRecord } | undefined;
    if (req.rollback) {
      try {
        last = await readLastGood(req.host);
      } catch (err: unknown) {
        // Nothing to roll back to: the node and its receipt stay as they are.
        return { error: err };
      }
    }
    const first = await runNodeUnlocked(req, last);
    if (!req.rollbackOnFailure || req.rollback || !rollbackWorthy(first)) return first;
    return await rollBackAfter(req, first);
  } finally {
    await lock.release();
  }
}

/**
 * A failed run that a rollback can help: one whose walk ran (the node was changed) and failed, or
 * after which the Node did not come back Ready. A run refused before its walk (a bad config, a
 * preflight check, a drain a budget refused) changed nothing: the node still runs its last good
 * config, and the error says what to fix.
 */
function rollbackWorthy(o: RunOutcome): boolean {
  if (!o.report) return false;
  return !o.report.ok || (o.error instanceof AgentError && o.error.code === 'NOT_READY');
}

/** The automatic rollback after `first` failed: the last good config, unless there is none or it is the one that failed. */
async function rollBackAfter(req: RunRequest, first: RunOutcome): Promise<RunOutcome> {
  const from = first.receipt?.configHash ?? '';
  const failedTasks = (first.report?.results ?? []).filter((r) => r.status === 'failed').map((r) => `${r.key}: ${r.error?.message ?? 'failed'}`);
  const reason = first.error !== undefined ? errorMessage(first.error) : `tasks failed: ${failedTasks.join('; ')}`;
  let last: { raw: Buffer; record: LastGoodRecord };
  try {
    last = await readLastGood(req.host);
  } catch (err: unknown) {
    req.log.warn({ reason: errorMessage(err) }, 'the run failed and there is no last good config to roll back to');
    return first;
  }
  if (last.record.configHash === from) {
    req.log.warn({ configHash: from }, 'the run failed on the last good config itself: nothing to roll back to');
    return first;
  }
  req.log.warn({ from, to: last.record.configHash, reason }, 'the new config failed: rolling back to the last good config (--rollback-on-failure)');
  const auto = { from, reason };
  return { ...(await runNodeUnlocked(req, last, auto)), autoRollback: auto };
}

async function runNodeUnlocked(req: RunRequest, last?: { raw: Buffer; record: LastGoodRecord }, auto?: AutoRollback): Promise<RunOutcome> {
  const started = req.host.now();
  const mode: Mode = req.mode === 'plan' ? 'plan' : 'apply';
  let boot: BootConfig | undefined;
  let model: NodeModel | undefined;
  let store: StateStore | undefined;
  let raw: Buffer | undefined;
  let rolledBack: LastGoodRecord | undefined;
  let report: RunReport | undefined;
  let preflight: readonly PreflightResult[] | undefined;
  let notes: readonly string[] = [];
  let guard: DrainGuard | undefined;
  let disruption: Disruption | undefined;
  let error: unknown;
  try {
    boot = await loadBoot(req.bootConfig);
    // Opened first, so that a run failing before its graph (the NodeConfig missing, its hash or
    // content bad, the distro unsupported) still publishes its receipt there.
    store = storeOf(req, boot);
    let local: { raw: Buffer; source: string } | undefined;
    if (last) {
      rolledBack = last.record;
      boot = { ...boot, nodeConfigHash: last.record.configHash };
      local = { raw: last.raw, source: lastGoodConfigPath };
      req.log.warn({ configHash: last.record.configHash, kubernetes: last.record.kubernetesVersion, convergedAt: last.record.convergedAt, source: last.record.source }, 'rolling back to the last good config');
    }
    ({ model, raw } = await loadModel(req, boot, store, local));
    req.log.info({ node: model.nodeName, distro: model.distro.id, arch: model.facts.arch, role: model.spec.role, kubernetes: model.versions.kubernetes, mode: req.mode }, 'starting');
    const registry = req.components ?? allComponents;
    const comps = selectComponents(registry, req.only, req.skip);
    checkIgnoreFlags(model, registry, req.ignorePreflight ?? []);
    const m = model;
    notes = comps.flatMap((c) => (c.notes?.(m) ?? []).map((n) => `${c.name}: ${n}`));
    for (const note of notes) req.log.info({ note }, 'note');
    const builder = buildGraph(model, comps);
    const graph = builder.finish();
    preflight = runPreflight(model, comps, [...(req.ignorePreflight ?? []), ...model.spec.preflight.ignore]);
    for (const p of preflight.filter((r) => !r.ok)) req.log.warn({ check: p.name, ignored: p.ignored, problem: p.message }, 'preflight check failed');
    if (mode === 'apply') assertPreflight(preflight);
    if (req.mode === 'apply' && req.drain) {
      guard = await beforeWalk({ host: req.host, log: req.log, graph, ctx: { store }, nodeName: model.nodeName, live: req.host.root === '/', drain: req.drain.enabled, drainTimeoutMs: req.drain.timeoutMs });
    }
    report = await execute(graph, req.host, { mode, log: req.log, owner: builder.owner, store });
    if (guard) {
      const g = guard;
      disruption = await afterWalk(g, report.ok, { host: req.host, log: req.log, ...(req.drain?.readyTimeoutMs ? { readyTimeoutMs: req.drain.readyTimeoutMs } : {}) }).catch((err: unknown) => {
        error = err;
        return { ...g.record, uncordoned: false };
      });
    }
  } catch (err: unknown) {
    error = err;
  }
  const finished = req.host.now();
  let receipt: Receipt | undefined;
  if (boot && req.mode !== 'plan') {
    const whole = (req.only ?? []).length === 0 && (req.skip ?? []).length === 0;
    // The host facts read the last receipt before the walk (it is written only below): read it
    // again only when no facts came that far.
    const previous = model?.facts.convergedKubernetesVersion ?? convergedVersionOf((await req.host.fs.read(receiptPath).catch(() => undefined))?.toString('utf8'));
    receipt = buildReceipt({
      nodeName: model?.nodeName ?? boot.nodeName?.toLowerCase() ?? (await hostnameOf(req)),
      cluster: boot.clusterName,
      instanceGroup: boot.instanceGroup,
      mode: req.mode,
      configHash: boot.nodeConfigHash,
      nodeupVersion,
      startedAt: started,
      finishedAt: finished,
      ...(report ? { report } : {}),
      ...(preflight ? { preflight } : {}),
      ...(error !== undefined ? { error: summarizeError(error) } : {}),
      ...(model && whole ? { kubernetesVersion: model.versions.kubernetes } : {}),
      ...(previous ? { previousConvergedVersion: previous } : {}),
      ...(rolledBack ? { rolledBackTo: rolledBack.configHash } : {}),
      ...(disruption ? { disruption } : {}),
      ...(auto ? { rolledBackFrom: auto.from, rollbackReason: auto.reason } : {}),
    });
    await writeReceipt(req, receipt, store, whole);
    if (receipt.result === 'converged' && req.mode === 'apply' && whole && raw && model) {
      const last = { configHash: boot.nodeConfigHash, kubernetesVersion: model.versions.kubernetes, convergedAt: receipt.finishedAt, source: rolledBack?.source ?? `${boot.stateStore}/${storeLayout.nodeConfig(boot.instanceGroup)}` };
      await saveLastGood(req.host, raw, last).catch((err: unknown) => req.log.warn({ err }, 'cannot keep the last good config'));
      if (model.spec.role === 'control-plane' && store?.writable) await recordControlPlane(store, model.nodeName, model.versions.kubernetes, receipt.finishedAt, req.log);
    }
    if (req.mode === 'apply' && req.metricsFile) await writeMetrics(req, req.metricsFile, receipt);
  }
  req.log.info(
    { mode: req.mode, changed: report?.changed ?? 0, failed: report?.failed ?? 0, blocked: report?.blocked ?? 0, durationMs: finished - started, ok: error === undefined && (report?.ok ?? false) },
    'run finished',
  );
  return { notes, ...(report ? { report } : {}), ...(model ? { model } : {}), ...(preflight ? { preflight } : {}), ...(receipt ? { receipt } : {}), ...(error !== undefined ? { error } : {}) };
}

/** The node's name when the run failed before its model: the hostname, as the model would take it. */
async function hostnameOf(req: RunRequest): Promise<string> {
  const facts = req.facts ?? (await readHostFacts(req.host).catch(() => undefined));
  return facts?.hostname.toLowerCase() ?? 'unknown';
}

/** The run's metrics for node_exporter's textfile collector, replaced atomically; a failure is logged, never fatal. */
async function writeMetrics(req: RunRequest, file: string, receipt: Receipt): Promise<void> {
  try {
    await req.host.fs.mkdirp(file.slice(0, file.lastIndexOf('/')) || '/', 0o755);
    await req.host.fs.writeAtomic(file, renderMetrics(receipt), { mode: 0o644 });
  } catch (err: unknown) {
    req.log.warn({ err, file }, 'cannot write the run metrics');
  }
}

/** `whole`: the run had no --only and no --skip; only such a run that converged writes the sentinels. */
async function writeReceipt(req: RunRequest, receipt: Receipt, store: StateStore | undefined, whole: boolean): Promise<void> {
  const text = JSON.stringify(receipt, null, 2) + '\n';
  try {
    await req.host.fs.mkdirp('/var/lib/nodeup', 0o755);
    await req.host.fs.writeAtomic(receiptPath, text, { mode: 0o644 });
    // The sentinels say the node is set up: only a whole run that converged.
    if (receipt.result === 'converged' && receipt.mode === 'apply' && whole) {
      for (const s of [readySentinel, capiSentinel]) {
        if (!(await req.host.fs.stat(s))) {
          await req.host.fs.mkdirp(s.slice(0, s.lastIndexOf('/')), 0o755);
          await req.host.fs.writeAtomic(s, 'success\n', { mode: 0o644 });
        }
      }
    } else if (receipt.result === 'failed') {
      await req.host.fs.remove(readySentinel);
    }
  } catch (err: unknown) {
    req.log.error({ err }, 'cannot write the local receipt');
  }
  if (store && store.writable && req.publishReceipt !== false) {
    try {
      await store.write(storeLayout.receipt(receipt.nodeName), text);
    } catch (err: unknown) {
      req.log.warn({ err }, 'cannot publish the receipt to the state store');
    }
  }
}
