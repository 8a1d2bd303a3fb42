// A/B start-up: two nodeup binaries run the same command in interleaved rounds beside bare
// `node -e 0`, so a noisy machine moves all three alike; prints the medians, each as a ratio to the
// floor, and new/old. For a change's effect on start-up (issue 17) when the machine is too busy for
// absolute figures.
//   node bench/ab.ts OLD_BINARY NEW_BINARY [--rounds N] -- ARGS...
// e.g. node bench/ab.ts /tmp/old/nodeup-linux-amd64 dist/nodeup-linux-amd64 -- version
import { spawnSync } from 'node:child_process';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const head = sep < 0 ? argv : argv.slice(0, sep);
const args = sep < 0 ? [] : argv.slice(sep + 1);
const roundsAt = head.indexOf('--rounds');
const rounds = roundsAt < 0 ? 21 : Number(head[roundsAt + 1]);
const [oldBin, newBin] = head.filter((_, i) => i !== roundsAt && i !== roundsAt + 1);
if (!oldBin || !newBin || args.length === 0 || !Number.isInteger(rounds) || rounds < 1) {
  process.stderr.write('usage: node bench/ab.ts OLD_BINARY NEW_BINARY [--rounds N] -- ARGS...\n');
  process.exit(2);
}
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODEUP_LOG_LEVEL: 'warn' };
const wall = (file: string, a: readonly string[]): number => {
  const t = process.hrtime.bigint();
  const r = spawnSync(file, [...a], { env, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${file} ${a.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const samples = { old: [] as number[], new: [] as number[], floor: [] as number[] };
for (let i = 0; i < rounds; i++) {
  samples.old.push(wall(oldBin, args));
  samples.new.push(wall(newBin, args));
  samples.floor.push(wall(process.execPath, ['-e', '0']));
}
const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
const [o, n, f] = [med(samples.old), med(samples.new), med(samples.floor)];
process.stdout.write(`${args.join(' ')}: ${rounds} interleaved rounds, medians\n  old ${o.toFixed(0)} ms (${(o / f).toFixed(2)}x floor)\n  new ${n.toFixed(0)} ms (${(n / f).toFixed(2)}x floor)\n  floor ${f.toFixed(0)} ms (node -e 0)\n  new/old ${(n / o).toFixed(2)}\n`);
