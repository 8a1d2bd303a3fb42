// Preflight: named checks run before any change. A failing check stops the run with exit code 2
// and says how to skip it; each component contributes its own checks.
import type { Component, PreflightCheck } from '../model/component.ts';
import { AgentError } from '../engine/errors.ts';
import type { NodeModel } from '../model/node-model.ts';

export interface PreflightResult {
  readonly name: string;
  readonly ok: boolean;
  readonly ignored: boolean;
  readonly message?: string;
}

export function runPreflight(
  model: NodeModel,
  components: readonly Component[],
  ignore: readonly string[],
  extra: readonly PreflightCheck[] = [],
): readonly PreflightResult[] {
  const checks = [...extra, ...components.flatMap((c) => c.preflight?.(model) ?? [])];
  const ignoreAll = ignore.includes('all');
  return checks.map((c) => {
    const message = c.check(model);
    const ignored = ignoreAll || ignore.includes(c.name);
    return message === undefined ? { name: c.name, ok: true, ignored } : { name: c.name, ok: false, ignored, message };
  });
}

export function assertPreflight(results: readonly PreflightResult[]): void {
  const failed = results.filter((r) => !r.ok && !r.ignored);
  if (failed.length === 0) return;
  const lines = failed.map((r) => `[${r.name}] ${r.message ?? ''}`);
  throw new AgentError(
    'PREFLIGHT_FAILED',
    `preflight checks failed (nothing was changed):\n  ${lines.join('\n  ')}\nskip a check with --ignore-preflight NAME if you are sure`,
    { details: { failed: failed.map((r) => r.name) } },
  );
}
