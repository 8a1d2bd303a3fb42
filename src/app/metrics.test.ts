// The run's metrics in Prometheus' text format: every sample line well formed, the values the
// receipt holds, label values escaped.
import { describe, expect, it } from 'vitest';
import { renderMetrics } from './metrics.ts';
import type { Receipt } from './receipt.ts';

const receipt: Receipt = {
  apiVersion: 'nodeup.dev/v1alpha1',
  kind: 'Receipt',
  nodeName: 'node-a',
  cluster: 'prod "eu"',
  instanceGroup: 'nodes',
  mode: 'apply',
  configHash: 'sha256:abc',
  nodeupVersion: '0.1.0',
  startedAt: '2026-12-06T10:00:00.000Z',
  finishedAt: '2026-12-06T10:00:12.500Z',
  durationMs: 12_500,
  result: 'failed',
  changed: 2,
  failed: 1,
  blocked: 1,
  tasks: [
    { key: 'file:/etc/a', component: 'node-files', status: 'changed', durationMs: 10 },
    { key: 'file:/etc/b', component: 'node-files', status: 'unchanged', durationMs: 5 },
    { key: 'download:kubelet', component: 'kubelet', status: 'failed', durationMs: 2000 },
    { key: 'unit:kubelet.service', component: 'kubelet', status: 'blocked', durationMs: 0 },
    { key: 'unit:containerd.service', component: 'containerd', status: 'changed', durationMs: 1500 },
  ],
};

describe('renderMetrics', () => {
  const text = renderMetrics(receipt);
  const samples = new Map(
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => {
        const m = /^([a-z_]+(?:\{.*\})?) (-?[0-9.]+)$/.exec(l);
        if (!m) throw new Error(`not a sample line: ${l}`);
        return [m[1]!, Number(m[2])] as const;
      }),
  );

  it('says when the run finished, how long it took, and that it failed', () => {
    expect(samples.get('nodeup_last_run_timestamp_seconds{mode="apply"}'), '2026-12-06T10:00:13Z, rounded').toBe(1796551213);
    expect(samples.get('nodeup_last_run_duration_seconds{mode="apply"}')).toBe(12.5);
    expect(samples.get('nodeup_last_run_success{mode="apply"}')).toBe(0);
  });

  it('counts tasks by status, and by component and status', () => {
    expect(samples.get('nodeup_last_run_tasks{mode="apply",status="changed"}')).toBe(2);
    expect(samples.get('nodeup_last_run_tasks{mode="apply",status="failed"}')).toBe(1);
    expect(samples.get('nodeup_last_run_tasks{mode="apply",status="planned"}')).toBe(0);
    expect(samples.get('nodeup_last_run_component_tasks{mode="apply",component="kubelet",status="blocked"}')).toBe(1);
    expect(samples.get('nodeup_last_run_component_tasks{mode="apply",component="node-files",status="unchanged"}')).toBe(1);
    expect(samples.has('nodeup_last_run_component_tasks{mode="apply",component="containerd",status="failed"}'), 'statuses with no task left out').toBe(false);
    expect(samples.get('nodeup_last_run_component_duration_seconds{mode="apply",component="kubelet"}')).toBe(2);
  });

  it('escapes label values and declares every metric once with HELP and TYPE', () => {
    expect(text).toContain('nodeup_info{version="0.1.0",config_hash="sha256:abc",cluster="prod \\"eu\\"",instance_group="nodes"} 1\n');
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(types.length).toBe(new Set(types).size);
    expect(types.length).toBe(text.split('\n').filter((l) => l.startsWith('# HELP ')).length);
    expect(text.endsWith('\n')).toBe(true);
  });
});
