// Runs one job per host with a parallelism limit and stops the rollout at the first failure: hosts
// already running finish, hosts not yet started are skipped (k0sctl-style batches, kops-style "stop
// on a broken node"). Reports every host, in input order.
import { errorMessage } from '../engine/errors.ts';

export type HostOutcome<R> =
  | { readonly host: string; readonly status: 'ok'; readonly result: R; readonly durationMs: number }
  | { readonly host: string; readonly status: 'failed'; readonly error: unknown; readonly message: string; readonly durationMs: number }
  | { readonly host: string; readonly status: 'skipped' };

export interface RolloutOptions {
  /** Most hosts worked on at once (>= 1). */
  readonly parallel: number;
  /** Keep going after a failure (default false: stop the rollout). */
  readonly continueOnError?: boolean;
  readonly now?: () => number;
}

/**
 * Stages in order (control planes, then workers), each with its own parallelism; a failure in a
 * stage skips every later stage (unless continueOnError). Outcomes in the stages' order.
 */
export async function runStaged<R>(stages: readonly { readonly hosts: readonly string[]; readonly parallel: number }[], opts: Omit<RolloutOptions, 'parallel'>, job: (host: string) => Promise<R>): Promise<HostOutcome<R>[]> {
  const out: HostOutcome<R>[] = [];
  let stopped = false;
  for (const stage of stages) {
    if (stopped) {
      out.push(...stage.hosts.map((host) => ({ host, status: 'skipped' as const })));
      continue;
    }
    const res = await runRollout(stage.hosts, { ...opts, parallel: stage.parallel }, job);
    out.push(...res);
    if (!opts.continueOnError && res.some((r) => r.status === 'failed')) stopped = true;
  }
  return out;
}

export async function runRollout<R>(hosts: readonly string[], opts: RolloutOptions, job: (host: string) => Promise<R>): Promise<HostOutcome<R>[]> {
  const now = opts.now ?? Date.now;
  const limit = Math.max(1, Math.floor(opts.parallel));
  const out: HostOutcome<R>[] = hosts.map((host) => ({ host, status: 'skipped' }));
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && next < hosts.length) {
      const i = next++;
      const host = hosts[i]!;
      const t0 = now();
      try {
        const result = await job(host);
        out[i] = { host, status: 'ok', result, durationMs: now() - t0 };
      } catch (err: unknown) {
        out[i] = { host, status: 'failed', error: err, message: errorMessage(err), durationMs: now() - t0 };
        if (!opts.continueOnError) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, hosts.length) }, worker));
  return out;
}
