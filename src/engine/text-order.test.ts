import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareText } from './text-order.ts';

const enUS = new Intl.Collator('en-US');
const sign = (n: number): number => Math.sign(n);
const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));

describe('compareText', () => {
  it('orders every pair of printable ASCII characters as an en-US collator does', () => {
    for (const a of printable) for (const b of printable) expect([a, b, sign(compareText(a, b))]).toEqual([a, b, sign(enUS.compare(a, b))]);
  });

  it('agrees with an en-US collator on random ASCII strings close to each other', () => {
    // A small seeded generator: the same strings every run, many sharing prefixes and letters
    // that differ in case only, where an order differs first.
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = 'aAbBzZ09_-./: ~';
    const word = (): string => Array.from({ length: rand(6) }, () => alphabet[rand(alphabet.length)]).join('');
    let disagreements = 0;
    for (let i = 0; i < 20000; i++) {
      const a = word();
      const b = rand(3) === 0 ? a.replace(/[a-z]/, (c) => c.toUpperCase()) : word();
      if (sign(compareText(a, b)) !== sign(enUS.compare(a, b))) disagreements++;
    }
    expect(disagreements).toBe(0);
  });

  it('sorts labels and flags as before, whatever the locale', () => {
    const labels = ['node.kubernetes.io/exclude-from-external-load-balancers', 'node-role.kubernetes.io/control-plane', 'topology.kubernetes.io/zone', 'Zone', 'zone'];
    expect([...labels].sort(compareText)).toEqual([...labels].sort(enUS.compare));
    expect(['b', 'B', 'a', 'A', 'aa', 'z', 'Z', 'y'].sort(compareText)).toEqual(['a', 'A', 'aa', 'b', 'B', 'y', 'z', 'Z']);
  });

  it('hands other text to an en-US collator', () => {
    expect(sign(compareText('é', 'f'))).toBe(-1);
    expect(sign(compareText('e', 'é'))).toBe(-1);
    expect(compareText('größe', 'größe')).toBe(0);
  });

  it('gives the same order under a Danish locale, where localeCompare does not', () => {
    const words = JSON.stringify(['b', 'B', 'a', 'A', 'aa', 'z', 'Z', 'node-role.kubernetes.io/control-plane', 'node.kubernetes.io/x']);
    const script = `import { compareText } from ${JSON.stringify(new URL('./text-order.ts', import.meta.url).href)};
      const w = ${words};
      console.log(JSON.stringify({ ours: [...w].sort(compareText), locale: [...w].sort((x, y) => x.localeCompare(y)) }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'da_DK.UTF-8' } })) as Record<string, string[]>;
    expect(out.ours).toEqual(JSON.parse(words).sort(enUS.compare));
    expect(out.locale).not.toEqual(out.ours); // the bug compareText exists for: "A" before "a", "aa" after "z"
  });
});
