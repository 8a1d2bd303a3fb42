import { describe, expect, it } from 'vitest';
import { majorMinor, versionAtLeast } from './version.ts';

describe('versions', () => {
  it('reads major and minor with or without a v, patch ignored', () => {
    expect(majorMinor('v1.35.1')).toEqual([1, 35]);
    expect(majorMinor('2.1.6')).toEqual([2, 1]);
    expect(majorMinor('3.5')).toEqual([3, 5]);
    expect(majorMinor('latest')).toEqual([0, 0]);
  });

  it('compares numerically, not as text', () => {
    expect(versionAtLeast('3.10.0', 3, 5)).toBe(true);
    expect(versionAtLeast('3.4.37', 3, 5)).toBe(false);
    expect(versionAtLeast('4.0.0', 3, 5)).toBe(true);
    expect(versionAtLeast('2.0.7', 2, 1)).toBe(false);
    expect(versionAtLeast('2.1.0', 2, 1)).toBe(true);
    expect(versionAtLeast('1.6.9', 1, 7)).toBe(false);
    expect(versionAtLeast('', 1, 7)).toBe(false);
  });
});
