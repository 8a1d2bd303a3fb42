// The agent's own commands that run the graph: apply, plan, install-unit (status, version and
// schema live in info-commands.ts, so they load none of this).
import { execute } from '../engine/executor.ts';
import { type Command, type CommandContext, stringList } from './cli.ts';
import { AgentError, errorForLog, errorMessage, exitCodeFor, rolledBackExitCode } from '../engine/errors.ts';
import { Graph } from '../engine/graph.ts';
import { NodeHost } from '../engine/host/node-host.ts';
import { renderPlan } from '../engine/plan-printer.ts';
import { runNode } from './run.ts';
import { nodeupUnitTask } from './nodeup-unit.ts';
import { defaultMetricsFile } from './metrics.ts';
import { defaultDrainTimeoutS, readyTimeoutMs } from './drain-guard.ts';
import { describeRestarts, drainTimeoutMs, restartsOf } from './disruption.ts';

/** What every command that converges a node reads from its flags: --root, --config, --only, --skip, --ignore-preflight. */
export function nodeRunFlags(ctx: CommandContext): { host: NodeHost; log: CommandContext['log']; bootConfig: string; only: string[]; skip: string[]; ignorePreflight: string[] } {
  return {
    host: new NodeHost({ root: String(ctx.values.root), log: ctx.log }),
    log: ctx.log,
    bootConfig: String(ctx.values.config),
    only: stringList(ctx.values.only),
    skip: stringList(ctx.values.skip),
    ignorePreflight: stringList(ctx.values['ignore-preflight']),
  };
}

/** The default of apply's --join-timeout, in seconds: a control plane launched at the same time converges in 3 to 6 minutes under TCG. */
export const defaultJoinTimeoutS = 1200;

/** --join-timeout SECONDS (a whole number, 0: no wait) in milliseconds. */
export function joinTimeoutMs(value: CommandContext['values'][string]): number {
  const text = value === undefined ? String(defaultJoinTimeoutS) : Array.isArray(value) ? value.join(',') : String(value);
  if (!/^\d+$/.test(text)) {
    throw new AgentError('USAGE', `--join-timeout takes a whole number of seconds (0: do not wait), got '${text}'`, { details: { flag: '--join-timeout' } });
  }
  return Number(text) * 1000;
}

/** apply, plan, and rollback (an apply of the node's last good config, last-good.ts). */
function runCommand(name: 'apply' | 'plan' | 'rollback', summary: string): Command {
  const mode = name === 'plan' ? 'plan' : 'apply';
  return {
    name,
    summary,
    usage:
      `nodeup ${name} [--config FILE] [--root DIR] [--only C] [--skip C] [--ignore-preflight NAME]` +
      (mode === 'apply' ? ` [--join-timeout SECONDS (a worker waits this long for the cluster CA and bootstrap token in the state store; default ${defaultJoinTimeoutS}, 0: no wait)]` : '') +
      (mode === 'plan' ? '' : ' [--no-wait (stop at once, exit 1, when another nodeup run holds the node\'s run lock; default: wait for it)]') +
      (mode === 'apply' ? ` [--metrics-file PATH (Prometheus metrics of the run for node_exporter's textfile collector; default ${defaultMetricsFile}, '': none)]` : '') +
      (mode === 'apply'
        ? ` [--drain-timeout SECONDS (before restarting a running kubelet or containerd of a registered Node: cordon, evict its pods through the Eviction API within this time, uncordon when Ready again; default ${defaultDrainTimeoutS})] [--no-drain (restart without draining)]` +
          ` [--ready-timeout SECONDS (how long the Node may take to be Ready again after such a restart; default ${readyTimeoutMs / 1000})]`
        : '') +
      (name === 'apply' ? ' [--rollback-on-failure (when a run that changed the node fails, or the Node is not Ready after a restart, converge at once to the last good config; exit 3 when that converges)]' : ''),
    options: {
      'ignore-preflight': { type: 'string', multiple: true },
      json: { type: 'boolean' },
      ...(mode === 'apply'
        ? {
            'join-timeout': { type: 'string' as const },
            'metrics-file': { type: 'string' as const, default: defaultMetricsFile },
            'drain-timeout': { type: 'string' as const },
            'no-drain': { type: 'boolean' as const },
            'ready-timeout': { type: 'string' as const },
          }
        : {}),
      ...(name === 'apply' ? { 'rollback-on-failure': { type: 'boolean' as const } } : {}),
      ...(mode === 'plan' ? {} : { 'no-wait': { type: 'boolean' as const } }),
    },
    async run(ctx: CommandContext): Promise<number> {
      const outcome = await runNode({
        mode,
        ...(name === 'rollback' ? { rollback: true } : {}),
        ...nodeRunFlags(ctx),
        ...(mode === 'apply'
          ? {
              joinTimeoutMs: joinTimeoutMs(ctx.values['join-timeout']),
              metricsFile: String(ctx.values['metrics-file']),
              drain: {
                enabled: ctx.values['no-drain'] !== true,
                timeoutMs: drainTimeoutMs(ctx.values['drain-timeout'], defaultDrainTimeoutS, '--drain-timeout'),
                readyTimeoutMs: drainTimeoutMs(ctx.values['ready-timeout'], readyTimeoutMs / 1000, '--ready-timeout'),
              },
            }
          : {}),
        ...(name === 'apply' && ctx.values['rollback-on-failure'] === true ? { rollbackOnFailure: true } : {}),
        ...(mode === 'plan' ? {} : { waitForLock: ctx.values['no-wait'] !== true }),
      });
      if (outcome.report) ctx.out(ctx.values.json ? JSON.stringify(outcome.report, null, 2) + '\n' : renderPlan(outcome.report));
      if (!ctx.values.json) for (const note of outcome.notes ?? []) ctx.out(`note: ${note}\n`);
      // Only a live host observes whether a unit runs now; a scratch root has nothing to disrupt.
      const restarts = mode === 'plan' && outcome.report && String(ctx.values.root) === '/' ? restartsOf(outcome.report.results) : [];
      if (restarts.length > 0 && !ctx.values.json) {
        ctx.out(`disruptive: restarts ${describeRestarts(restarts)}; on a registered Node, apply cordons and drains it first and uncordons it when Ready (--no-drain: it does not)\n`);
      }
      if (outcome.preflight && mode === 'plan') {
        for (const p of outcome.preflight.filter((r) => !r.ok)) ctx.out(`preflight ${p.ignored ? 'ignored' : 'would fail'}: [${p.name}] ${p.message ?? ''}\n`);
      }
      if (outcome.error !== undefined) {
        ctx.log.error({ err: errorForLog(outcome.error) }, 'run failed');
        process.stderr.write(`nodeup ${name}: ${errorMessage(outcome.error)}\n`);
        return exitCodeFor(outcome.error);
      }
      // plan tells the truth: where apply would refuse (a failing check not ignored), plan fails too.
      const refusing = mode === 'plan' ? (outcome.preflight ?? []).filter((p) => !p.ok && !p.ignored).map((p) => p.name) : [];
      if (refusing.length > 0) {
        ctx.log.error({ checks: refusing }, 'apply would refuse: preflight checks fail');
        process.stderr.write(`nodeup plan: apply would refuse: preflight checks fail: ${refusing.join(', ')} (fix them, or ignore one with spec.preflight.ignore or --ignore-preflight NAME)\n`);
        return 2;
      }
      if (outcome.autoRollback && outcome.report?.ok) {
        process.stderr.write(`nodeup ${name}: the config ${outcome.autoRollback.from} failed (${outcome.autoRollback.reason}); the node was rolled back to its last good config ${outcome.receipt?.rolledBackTo ?? ''} and converged\n`);
        return rolledBackExitCode;
      }
      return outcome.report?.ok ? 0 : 1;
    },
  };
}

export const applyCommand = runCommand('apply', 'converge this node to its config (what every boot runs)');
export const planCommand = runCommand('plan', 'print every change apply would make, and make none');
export const rollbackCommand = runCommand('rollback', 'converge this node back to its last good config (kept on the node after each whole apply that converged), without the state store');

export const installUnitCommand: Command = {
  name: 'install-unit',
  summary: 'install nodeup.service (runs apply at every boot) and start it without waiting',
  usage: 'nodeup install-unit [--config FILE] [--binary PATH] [--root DIR] [--no-start]',
  options: {
    binary: { type: 'string', default: '/usr/local/bin/nodeup' },
    'unit-dir': { type: 'string', default: '/etc/systemd/system' },
    'no-start': { type: 'boolean' },
  },
  async run(ctx) {
    const host = new NodeHost({ root: String(ctx.values.root), log: ctx.log });
    const graph = new Graph();
    graph.setOwner('install-unit');
    graph.add(
      nodeupUnitTask({
        binary: String(ctx.values.binary),
        config: String(ctx.values.config),
        unitDir: String(ctx.values['unit-dir']),
        enabled: true,
        noBlock: !ctx.values['no-start'],
      }),
    );
    const report = await execute(graph.finish(), host, { mode: 'apply', log: ctx.log, owner: graph.owner });
    ctx.out(renderPlan(report));
    return report.ok ? 0 : 1;
  },
};

export function usageError(message: string): AgentError {
  return new AgentError('USAGE', message);
}
