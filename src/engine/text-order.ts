// One order for every list nodeup renders or prints, the same on every host.
//
// `String.prototype.localeCompare` orders by the process's locale, which ICU reads from LANG and
// LC_ALL: under da_DK.UTF-8 "A" sorts before "a" and "aa" after "z", under lt_LT.UTF-8 "y" before
// "n". A file nodeup renders in sorted order (kubelet's flags and labels, its config's maps) would
// then differ between a run at boot and one over SSH with another LANG, and each would rewrite it.
// compareText is the en-US order (CLDR root: what the C and en_US locales gave, so files rendered
// before keep their bytes) on any host. Printable ASCII, nearly all nodeup sorts, is compared here
// without ICU (a collator costs ~7 ms and ~4 MB at its first use, issue 17); anything else goes to
// an en-US Intl.Collator. text-order.test.ts checks the two agree.

/** Printable ASCII in en-US (CLDR root) primary order; a letter's two cases share a weight. */
const asciiOrder = ' _-,;:!?.\'"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpPqQrRsStTuUvVwWxXyYzZ';
const primary = new Int16Array(128).fill(-1);
{
  let weight = 0;
  for (const ch of asciiOrder) {
    const code = ch.charCodeAt(0);
    const upper = code >= 0x41 && code <= 0x5a;
    if (!upper) weight++;
    primary[code] = weight;
  }
}

let collator: Intl.Collator | undefined;

function printableAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if ((primary[s.charCodeAt(i)] ?? -1) < 0) return false;
  return true;
}

/** en-US order, whatever the host's locale: < 0 when a sorts first, 0 when equal, > 0 after. */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  if (!printableAscii(a) || !printableAscii(b)) {
    collator ??= new Intl.Collator('en-US');
    return collator.compare(a, b);
  }
  // First the characters' weights, case aside (a shorter prefix first)...
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (primary[a.charCodeAt(i)] ?? 0) - (primary[b.charCodeAt(i)] ?? 0);
    if (d !== 0) return d;
  }
  if (a.length !== b.length) return a.length - b.length;
  // ...then case: at the first difference, lower case first.
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x > y ? -1 : 1;
  }
  return 0;
}
