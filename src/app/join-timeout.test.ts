// apply's --join-timeout: seconds, a whole number; a bad value names the flag.
import { describe, expect, it } from 'vitest';
import { AgentError, exitCodeFor } from '../engine/errors.ts';
import { defaultJoinTimeoutS, joinTimeoutMs } from './commands.ts';

describe('--join-timeout', () => {
  it('defaults to 20 minutes; 0 turns the wait off; seconds become milliseconds', () => {
    expect(defaultJoinTimeoutS).toBe(1200);
    expect(joinTimeoutMs(undefined)).toBe(1_200_000);
    expect(joinTimeoutMs('0')).toBe(0);
    expect(joinTimeoutMs('90')).toBe(90_000);
  });

  it.each(['-1', '1.5', '10m', ''])('refuses %j with a usage error naming the flag', (v) => {
    let err: unknown;
    try {
      joinTimeoutMs(v);
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(AgentError);
    expect((err as Error).message).toMatch(/^--join-timeout takes a whole number of seconds \(0: do not wait\), got '/);
    expect(exitCodeFor(err)).toBe(2);
  });
});
