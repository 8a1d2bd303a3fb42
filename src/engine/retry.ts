// Layer: engine (README "How it works"). Imports no project layer above it.
// The one retry helper: attempts, backoff and a deadline, a predicate that decides from an error's
// identity (its code, status or kind, never its message) whether to try again, and time read and
// spent through a Clock — the Host is one, so tests that run on a test host keep virtual time.

/** Where a waiting loop reads and spends time: `host` (a Host has both) or `realClock`. */
export interface Clock {
  sleep(ms: number): Promise<void>;
  now(): number;
}

/** Wall-clock time, for code that runs without a Host (the orchestrator, defaults of pure helpers). */
export const realClock: Clock = {
  sleep: (ms) => sleep(ms),
  now: () => Date.now(),
};

/** Sleeps on the wall clock. */
export function sleep(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** A clock from the optional pieces a caller was given, the wall clock filling in what is missing. */
export function clockOf(parts: { readonly sleep?: ((ms: number) => Promise<void>) | undefined; readonly now?: (() => number) | undefined }): Clock {
  return { sleep: parts.sleep ?? sleep, now: parts.now ?? Date.now };
}

/** Exponential backoff: base, base·2, base·4 … capped at maxMs. */
export function exponentialBackoff(baseMs: number, maxMs = Number.POSITIVE_INFINITY): (attempt: number) => number {
  return (attempt) => Math.min(baseMs * 2 ** (attempt - 1), maxMs);
}

/** Linear backoff: step, 2·step, 3·step … capped at maxMs. */
export function linearBackoff(stepMs: number, maxMs: number): (attempt: number) => number {
  return (attempt) => Math.min(stepMs * attempt, maxMs);
}

export interface RetryOptions {
  /** Tries in all (the first included); unbounded when absent (a deadline then ends it). */
  readonly attempts?: number;
  /** Time from the first try after which a failure is final. */
  readonly deadlineMs?: number;
  /** The wait after the attempt-th failure (1-based). */
  readonly delayMs: number | ((attempt: number) => number);
  /** Whether this failure may clear by itself. Decides from identity: codes, statuses, kinds. */
  readonly isRetryable: (err: unknown) => boolean;
  /** Called before each wait (to log why it waits). */
  readonly onRetry?: (info: { readonly err: unknown; readonly attempt: number; readonly waitMs: number }) => void;
  readonly clock?: Clock;
}

/**
 * Runs fn until it succeeds; a failure that is not retryable, the last attempt's, or one after the
 * deadline is thrown as it is. fn gets the 1-based attempt number.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const clock = opts.clock ?? realClock;
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err: unknown) {
      const outOfAttempts = opts.attempts !== undefined && attempt >= opts.attempts;
      const outOfTime = opts.deadlineMs !== undefined && clock.now() - started > opts.deadlineMs;
      if (outOfAttempts || outOfTime || !opts.isRetryable(err)) throw err;
      const waitMs = typeof opts.delayMs === 'number' ? opts.delayMs : opts.delayMs(attempt);
      opts.onRetry?.({ err, attempt, waitMs });
      await clock.sleep(waitMs);
    }
  }
}
