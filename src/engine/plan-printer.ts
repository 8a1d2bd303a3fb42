// Renders a run report for people: every changing task, sorted by key, with its changes.
import { describeChange, type RunReport } from './executor.ts';
import { compareText } from './text-order.ts';

export function renderPlan(report: RunReport): string {
  const lines: string[] = [];
  const changing = report.results.filter((r) => r.status !== 'unchanged').sort((a, b) => compareText(a.key, b.key));
  for (const r of changing) {
    const mark = r.status === 'failed' ? '!' : r.status === 'blocked' ? '-' : r.status === 'planned' ? '+' : '~';
    lines.push(`${mark} ${r.key}${r.status === 'failed' || r.status === 'blocked' ? ` (${r.status})` : ''}`);
    for (const c of r.changes) lines.push(`    ${describeChange(c)}`);
    if (r.error) lines.push(`    error: ${r.error.code}: ${r.error.message}`);
    if (r.blockedBy) lines.push(`    blocked by: ${r.blockedBy}`);
  }
  const verb = report.mode === 'plan' ? 'would change' : 'changed';
  lines.push(
    `${report.results.length} tasks: ${report.changed} ${verb}, ${report.results.length - report.changed - report.failed - report.blocked} unchanged, ${report.failed} failed, ${report.blocked} blocked`,
  );
  return lines.join('\n') + '\n';
}
