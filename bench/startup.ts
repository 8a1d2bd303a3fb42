// The start-up benchmark (issue 17; run through bench/startup.sh): how close the shipped binary
// starts to the Node it embeds. One command runs N interleaved rounds; each round runs, one after
// the other:
//   floor    bare `node -e 0` of the very Node binary the build embeds (scripts/node-env.sh's
//            toolchain node, the file scripts/build.ts injects the SEA blob into: same bytes);
//   version  `nodeup version`;
//   apply    a converged `nodeup apply` of the example control plane on a scratch root
//            (--only node-files,prereqs,kube-proxy: the 8 tasks a scratch root converges offline);
//   plan     `nodeup plan` of the whole example control plane on an empty root (--skip packages:
//            a scratch root has no dpkg to query; every other component observes and diffs);
// and, for peak memory, the floor and the converged apply again under GNU time (%M).
// Interleaving puts the same machine noise on every case, so the ratios (median over rounds
// divided by the floor's median) hold on a busy machine where absolute figures do not.
//   bench/startup.sh [--rounds N] [--binary PATH] [--record] [--label TEXT]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exampleScenario, scenarioOnly } from '../scripts/lib/example-scenario.ts';

const repo = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    binary: { type: 'string', default: join(repo, 'dist/nodeup-linux-amd64') },
    node: { type: 'string', default: process.env.NODEUP_NODE_BIN ?? process.execPath },
    rounds: { type: 'string', default: '15' },
    record: { type: 'boolean' },
    label: { type: 'string', default: '' },
  },
});
const binary = resolve(String(values.binary));
const node = resolve(String(values.node));
const rounds = Number(values.rounds);
const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODEUP_LOG_LEVEL: 'warn' };
const progress = (msg: string): void => void process.stderr.write(`[startup] ${msg}\n`);

if (!existsSync(binary)) {
  progress(`no binary at ${binary}: run \`npm run build\` first`);
  process.exit(1);
}
if (!Number.isInteger(rounds) || rounds < 1) {
  progress('--rounds must be a positive integer');
  process.exit(1);
}

function wall(file: string, args: readonly string[]): number {
  const t = process.hrtime.bigint();
  const res = spawnSync(file, [...args], { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${file} ${args.join(' ')} exited ${res.status}: ${String(res.stderr).slice(-2000)}`);
  return ms;
}

/** Peak RSS in MB of one run, from GNU time. */
function peakRss(file: string, args: readonly string[]): number {
  const res = spawnSync('/usr/bin/time', ['-f', '@@rss %M', file, ...args], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const line = res.stderr.split('\n').find((l) => l.startsWith('@@rss '));
  if (res.status !== 0 || !line) throw new Error(`${file} ${args.join(' ')} under /usr/bin/time: exit ${res.status}: ${res.stderr.slice(-2000)}`);
  return Number(line.slice(6)) / 1024;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

const work = mkdtempSync(join(tmpdir(), 'nodeup-startup-'));
try {
  const scenario = exampleScenario(work);
  const gen = spawnSync(binary, scenario.example, { env, encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`nodeup example failed: ${gen.stderr}`);
  const only = scenarioOnly;
  const applyArgs = scenario.apply;
  const planArgs = scenario.plan;
  const first = spawnSync(binary, applyArgs, { env, encoding: 'utf8' });
  if (first.status !== 0) throw new Error(`first apply failed: ${first.stdout}${first.stderr}`);
  const converged = JSON.parse(spawnSync(binary, applyArgs, { env, encoding: 'utf8' }).stdout) as { changed: number; results: unknown[] };
  if (converged.changed !== 0) throw new Error(`the second apply changed ${converged.changed} tasks: not converged`);
  const applyTasks = converged.results.length;
  const planTasks = (JSON.parse(spawnSync(binary, planArgs, { env, encoding: 'utf8' }).stdout) as { results: unknown[] }).results.length;

  const cases = {
    floor: () => wall(node, ['-e', '0']),
    version: () => wall(binary, ['version']),
    apply: () => wall(binary, applyArgs),
    plan: () => wall(binary, planArgs),
    floorRss: () => peakRss(node, ['-e', '0']),
    applyRss: () => peakRss(binary, applyArgs),
  };
  type Case = keyof typeof cases;
  const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]])) as Record<Case, number[]>;
  // A file written moments ago (the build's binary) sits in the page cache in large folios, and a
  // fault maps a whole folio: its RSS then reads ~20 MB higher than the same bytes read back from
  // disk (kernel 6.18, ext4). Dropping both files' cached pages first puts binary and floor alike.
  spawnSync('sync');
  for (const f of [binary, node]) {
    const dropped = spawnSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
    if (dropped.status !== 0) throw new Error(`dd iflag=nocache ${f}: ${String(dropped.stderr)}`);
  }
  for (const run of Object.values(cases)) run(); // one warm-up round (page cache)
  progress(`${rounds} interleaved rounds: floor, version, apply (${applyTasks} tasks), plan (${planTasks} tasks), RSS of floor and apply`);
  for (let i = 0; i < rounds; i++) for (const [k, run] of Object.entries(cases) as [Case, () => number][]) samples[k].push(run());

  const m = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs)])) as Record<Case, number>;
  const ratio = { version: m.version / m.floor, apply: m.apply / m.floor, plan: m.plan / m.floor, rss: m.applyRss / m.floorRss };
  const goals = { version: 1.3, apply: 2, plan: 2.5, rss: 1.8 };
  const verdict = (k: keyof typeof goals): string => (ratio[k] <= goals[k] ? 'met' : 'MISSED');
  const xzPath = `${binary}.xz`;
  const xzBytes = existsSync(xzPath) && statSync(xzPath).mtimeMs >= statSync(binary).mtimeMs ? statSync(xzPath).size : NaN;
  const version = spawnSync(binary, ['version'], { env, encoding: 'utf8' }).stdout.trim();
  const model = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown').trim();
  const load = loadavg()[0]?.toFixed(1) ?? '?';
  const f = (x: number): string => x.toFixed(2);
  process.stdout.write(
    [
      `nodeup start-up benchmark — ${version}`,
      `machine: ${cpus().length} cpus, ${model}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; ${rounds} interleaved rounds, medians`,
      `floor:   ${node} -e 0: ${m.floor.toFixed(0)} ms, peak RSS ${m.floorRss.toFixed(1)} MB`,
      `version: ${m.version.toFixed(0)} ms   ratio ${f(ratio.version)} (goal <= ${goals.version}: ${verdict('version')})`,
      `apply:   ${m.apply.toFixed(0)} ms (converged, ${applyTasks} tasks, --only ${only})   ratio ${f(ratio.apply)} (goal <= ${goals.apply}: ${verdict('apply')})`,
      `plan:    ${m.plan.toFixed(0)} ms (whole example control plane but packages, ${planTasks} tasks)   ratio ${f(ratio.plan)} (goal <= ${goals.plan}: ${verdict('plan')})`,
      `apply peak RSS: ${m.applyRss.toFixed(1)} MB   ratio ${f(ratio.rss)} (goal <= ${goals.rss}: ${verdict('rss')})`,
      `binary xz: ${Number.isNaN(xzBytes) ? 'no fresh .xz beside the binary' : `${(xzBytes / 1e6).toFixed(1)} MB (goal <= 31.3 MB, kOps' nodeup: ${xzBytes <= 31.3e6 ? 'met' : 'MISSED'})`}`,
    ].join('\n') + '\n',
  );

  if (values.record) {
    const file = join(repo, 'bench/RESULTS.md');
    const section = '## Start-up against the embedded Node (bench/startup.sh)';
    const head = [
      '| date | nodeup | label | rounds | load | floor ms / MB | version ms (×) | converged apply ms (×) | plan ms (×) | apply peak RSS MB (×) | xz MB |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    ];
    const row = `| ${new Date().toISOString().slice(0, 10)} | ${version.replace(/^nodeup /, '')} | ${String(values.label)} | ${rounds} | ${load} | ${m.floor.toFixed(0)} / ${m.floorRss.toFixed(1)} | ${m.version.toFixed(0)} (${f(ratio.version)}) | ${m.apply.toFixed(0)} (${f(ratio.apply)}) | ${m.plan.toFixed(0)} (${f(ratio.plan)}) | ${m.applyRss.toFixed(1)} (${f(ratio.rss)}) | ${(xzBytes / 1e6).toFixed(1)} |`;
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.indexOf(section);
    if (at < 0) {
      while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
      lines.push('', section, '', ...head, row, '');
    } else {
      let end = lines.findIndex((l, i) => i > at && l.startsWith('#'));
      if (end < 0) end = lines.length;
      let last = at;
      for (let i = at + 1; i < end; i++) if (lines[i]?.startsWith('|')) last = i;
      if (last === at) lines.splice(at + 1, 0, '', ...head, row);
      else lines.splice(last + 1, 0, row);
    }
    writeFileSync(file, lines.join('\n'));
    progress(`recorded a row in ${file}`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
