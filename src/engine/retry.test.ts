import { describe, expect, it } from 'vitest';
import { AgentError } from './errors.ts';
import { clockOf, exponentialBackoff, linearBackoff, retry, type Clock } from './retry.ts';

/** A clock that only moves when slept on: the waits are recorded, no real time passes. */
function virtualClock(): Clock & { readonly waits: number[] } {
  let t = 1_000_000;
  const waits: number[] = [];
  return {
    waits,
    now: () => t,
    sleep: async (ms) => {
      waits.push(ms);
      t += ms;
    },
  };
}

const notReady = (): AgentError => new AgentError('NOT_READY', 'not yet');
const broken = (): AgentError => new AgentError('CONFIG_INVALID', 'wrong');
const byCode = (err: unknown): boolean => err instanceof AgentError && err.code === 'NOT_READY';

describe('retry', () => {
  it('retries a retryable failure with backoff on the given clock until it succeeds', async () => {
    const clock = virtualClock();
    let calls = 0;
    const seen: number[] = [];
    const out = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (++calls < 4) throw notReady();
        return 'done';
      },
      { attempts: 10, delayMs: exponentialBackoff(100, 250), isRetryable: byCode, clock },
    );
    expect(out).toBe('done');
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(clock.waits).toEqual([100, 200, 250]);
  });

  it('throws a failure that is not retryable at once, as it is', async () => {
    const clock = virtualClock();
    const err = broken();
    await expect(retry(() => Promise.reject(err), { delayMs: 10, isRetryable: byCode, clock })).rejects.toBe(err);
    expect(clock.waits).toEqual([]);
  });

  it('throws the last failure when the attempts run out', async () => {
    const clock = virtualClock();
    let calls = 0;
    const failures: unknown[] = [];
    const last = await retry(
      () => {
        const e = notReady();
        failures.push(e);
        calls++;
        return Promise.reject(e);
      },
      { attempts: 3, delayMs: 5, isRetryable: byCode, clock },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(last).toBe(failures[2]);
    expect(clock.waits).toEqual([5, 5]);
  });

  it('stops at the deadline, counted on the clock (virtual time, no real wait)', async () => {
    const clock = virtualClock();
    const retried: number[] = [];
    const startedReal = Date.now();
    await expect(
      retry(() => Promise.reject(notReady()), {
        deadlineMs: 60_000,
        delayMs: linearBackoff(1000, 5000),
        isRetryable: byCode,
        clock,
        onRetry: ({ attempt, waitMs }) => retried.push(attempt * 100_000 + waitMs),
      }),
    ).rejects.toMatchObject({ code: 'NOT_READY' });
    const slept = clock.waits.reduce((a, b) => a + b, 0);
    expect(slept).toBeGreaterThan(60_000);
    expect(slept - (clock.waits.at(-1) ?? 0)).toBeLessThanOrEqual(60_000);
    expect(clock.waits.slice(0, 6)).toEqual([1000, 2000, 3000, 4000, 5000, 5000]);
    expect(retried[0]).toBe(100_000 + 1000);
    expect(Date.now() - startedReal).toBeLessThan(5000);
  });

  it('fills a clock from the pieces given', async () => {
    const calls: number[] = [];
    const c = clockOf({ sleep: async (ms) => void calls.push(ms), now: () => 42 });
    await c.sleep(7);
    expect(calls).toEqual([7]);
    expect(c.now()).toBe(42);
    expect(Math.abs(clockOf({}).now() - Date.now())).toBeLessThan(1000);
  });
});
