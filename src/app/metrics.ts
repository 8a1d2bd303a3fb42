// Metrics of the last run for a fleet's Prometheus: after every `apply`, nodeup writes its receipt
// as Prometheus text-format metrics where node_exporter's textfile collector reads them (a file
// ending in .prom in the collector's directory, replaced atomically so a scrape never sees half of
// it). The default path is the directory Debian's and Ubuntu's prometheus-node-exporter package
// gives the collector; `--metrics-file PATH` names another, `--metrics-file ''` writes none.
import type { Receipt } from './receipt.ts';
import type { TaskStatus } from '../engine/executor.ts';

export const defaultMetricsFile = '/var/lib/prometheus/node-exporter/nodeup.prom';

const statuses: readonly TaskStatus[] = ['unchanged', 'changed', 'failed', 'blocked', 'planned'];

/** A label value as the text format wants it: backslash, double quote and newline escaped. Pure. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The receipt of a run as Prometheus text-format (0.0.4) metrics. Pure. */
export function renderMetrics(r: Receipt): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, samples: readonly [Record<string, string>, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',');
      lines.push(`${name}${l ? `{${l}}` : ''} ${Number.isInteger(value) ? String(value) : value.toFixed(3)}`);
    }
  };
  const mode = { mode: r.mode };
  metric('nodeup_last_run_timestamp_seconds', 'When the last nodeup run finished, in Unix seconds.', [[mode, Math.round(Date.parse(r.finishedAt) / 1000)]]);
  metric('nodeup_last_run_duration_seconds', 'How long the last nodeup run took.', [[mode, r.durationMs / 1000]]);
  metric('nodeup_last_run_success', '1 when the last nodeup run converged, 0 when it failed.', [[mode, r.result === 'converged' ? 1 : 0]]);
  metric(
    'nodeup_last_run_tasks',
    'Tasks of the last nodeup run by status.',
    statuses.map((s) => [{ ...mode, status: s }, r.tasks.filter((t) => t.status === s).length]),
  );
  const components = [...new Set(r.tasks.map((t) => t.component))].sort();
  metric(
    'nodeup_last_run_component_tasks',
    'Tasks of the last nodeup run by component and status (statuses with none left out).',
    components.flatMap((c) =>
      statuses
        .map((s): [Record<string, string>, number] => [{ ...mode, component: c, status: s }, r.tasks.filter((t) => t.component === c && t.status === s).length])
        .filter(([, n]) => n > 0),
    ),
  );
  metric(
    'nodeup_last_run_component_duration_seconds',
    'Time the tasks of each component took in the last nodeup run (summed; tasks run in parallel).',
    components.map((c) => [{ ...mode, component: c }, r.tasks.filter((t) => t.component === c).reduce((a, t) => a + t.durationMs, 0) / 1000]),
  );
  metric('nodeup_info', 'The nodeup version and the config hash of the last run.', [
    [{ version: r.nodeupVersion, config_hash: r.configHash, cluster: r.cluster, instance_group: r.instanceGroup }, 1],
  ]);
  return lines.join('\n') + '\n';
}
