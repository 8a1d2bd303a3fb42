// The foundation benchmark (run through bench/foundation.sh): measures the shipped binary, not the
// source. Prints binary sizes (raw and xz), `nodeup version` start time, and the wall time and peak
// RSS of a converged `apply` of the embedded example (`nodeup example --dir`) against a temp root.
// With --record, appends a row to bench/RESULTS.md.
//
// Which components the apply runs: this host cannot converge the whole example in a scratch root
// (package installs need a real distro root; kubelet/containerd archives come from hosts these
// machines cannot reach), so by default apply runs the components that converge offline
// (--only node-files,prereqs) and plan runs every component except packages. Override with
// NODEUP_BENCH_ONLY / NODEUP_BENCH_PLAN_SKIP. The printed figures say exactly what ran.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const repo = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    binary: { type: 'string', default: join(repo, 'dist/nodeup-linux-amd64') },
    runs: { type: 'string', default: '20' },
    record: { type: 'boolean' },
    keep: { type: 'boolean' },
  },
});
const binary = resolve(String(values.binary));
const runs = Number(values.runs);
const only = process.env.NODEUP_BENCH_ONLY ?? 'node-files,prereqs';
const planSkip = process.env.NODEUP_BENCH_PLAN_SKIP ?? 'packages';

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

if (!existsSync(binary)) {
  progress(`no binary at ${binary}: run \`npm run build\` first`);
  process.exit(1);
}

interface Timed {
  readonly seconds: number;
  readonly maxRssKb: number;
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the binary under GNU time: wall seconds and peak RSS of the process. */
function timed(args: readonly string[]): Timed {
  const res = spawnSync('/usr/bin/time', ['-f', '@@time %e %M', binary, ...args], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODEUP_LOG_LEVEL: 'warn' },
    maxBuffer: 64 << 20,
  });
  if (res.error) throw res.error;
  const line = res.stderr.split('\n').find((l) => l.startsWith('@@time '));
  if (!line) throw new Error(`/usr/bin/time printed no figures for ${args.join(' ')}: ${res.stderr}`);
  const [, sec, rss] = line.split(' ');
  return { seconds: Number(sec), maxRssKb: Number(rss), status: res.status ?? -1, stdout: res.stdout, stderr: res.stderr.replace(line, '') };
}

/** Wall time measured here (GNU time rounds to 10 ms). */
function wallMs(args: readonly string[]): { ms: number; status: number; out: string } {
  const t = process.hrtime.bigint();
  const res = spawnSync(binary, [...args], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODEUP_LOG_LEVEL: 'warn' } });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  return { ms, status: res.status ?? -1, out: `${res.stdout}${res.stderr}` };
}

function stats(xs: readonly number[]): { median: number; min: number; max: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  return { median, min: s[0] ?? 0, max: s[s.length - 1] ?? 0, mean: s.reduce((a, b) => a + b, 0) / (s.length || 1) };
}

const section = '## Foundation (bench/foundation.sh)';
const tableHead = [
  '| date | nodeup | machine | raw MB | xz MB | version start ms (mean) | converged apply ms (median) | apply peak RSS MB | plan ms / RSS MB | load avg |',
  '|---|---|---|---|---|---|---|---|---|---|',
];

/** Adds a row at the end of this benchmark's table in RESULTS.md (other benchmarks keep theirs). */
function recordRow(file: string, row: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n\nFigures printed by the bench/ scripts, one row per recorded run.\n';
  const lines = text.split('\n');
  const at = lines.indexOf(section);
  if (at < 0) {
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    lines.push('', section, '', ...tableHead, row.trimEnd(), '');
  } else {
    // The section ends at the next heading; the row goes after its last table row.
    let end = lines.findIndex((l, i) => i > at && l.startsWith('#'));
    if (end < 0) end = lines.length;
    let last = at;
    for (let i = at + 1; i < end; i++) if (lines[i]?.startsWith('|')) last = i;
    if (last === at) lines.splice(at + 1, 0, '', ...tableHead, row.trimEnd());
    else lines.splice(last + 1, 0, row.trimEnd());
  }
  writeFileSync(file, lines.join('\n'));
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1);

// 1. Sizes.
const rawBytes = statSync(binary).size;
const xzPath = `${binary}.xz`;
let xzBytes: number;
if (existsSync(xzPath) && statSync(xzPath).mtimeMs >= statSync(binary).mtimeMs) {
  xzBytes = statSync(xzPath).size;
} else {
  progress(`no fresh ${xzPath}: compressing a copy with xz -6 (slow)`);
  const res = spawnSync('sh', ['-c', `xz -6 --threads=2 -c "${binary}" | wc -c`], { encoding: 'utf8' });
  xzBytes = Number(res.stdout.trim());
}

// 2. `nodeup version` start time.
let versionMs: { mean: number; min: number; max: number; median: number; tool: string };
const hf = spawnSync('sh', ['-c', 'command -v hyperfine'], { encoding: 'utf8' });
if (hf.status === 0) {
  progress('timing `nodeup version` with hyperfine');
  const tmpJson = join(tmpdir(), `nodeup-hyperfine-${process.pid}.json`);
  const res = spawnSync('hyperfine', ['--warmup', '3', '--runs', String(Math.max(runs, 10)), '-N', '--export-json', tmpJson, `${binary} version`], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (res.status !== 0) throw new Error('hyperfine failed');
  const r = (JSON.parse(readFileSync(tmpJson, 'utf8')) as { results: { mean: number; min: number; max: number; median: number }[] }).results[0];
  rmSync(tmpJson, { force: true });
  if (!r) throw new Error('hyperfine reported nothing');
  versionMs = { mean: r.mean * 1e3, min: r.min * 1e3, max: r.max * 1e3, median: r.median * 1e3, tool: 'hyperfine' };
} else {
  progress('timing `nodeup version` with a loop (hyperfine not installed)');
  for (let i = 0; i < 3; i++) wallMs(['version']);
  versionMs = { ...stats(Array.from({ length: runs }, () => wallMs(['version']).ms)), tool: 'loop' };
}
const versionRss = timed(['version']).maxRssKb;

// 3. The example, converged apply and plan.
const work = mkdtempSync(join(tmpdir(), 'nodeup-bench-'));
try {
  const ex = join(work, 'example');
  const gen = spawnSync(binary, ['example', '--dir', ex], { encoding: 'utf8' });
  if (gen.status !== 0) throw new Error(`nodeup example failed: ${gen.stderr}`);
  const boot = join(ex, 'boot-control-plane.yaml');
  const root = join(work, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n');
  const applyArgs = ['apply', '--config', boot, '--root', root, '--only', only, '--json'];
  progress(`first apply (converging the temp root): --only ${only}`);
  const first = timed(applyArgs);
  if (first.status !== 0) throw new Error(`first apply failed (exit ${first.status}): ${first.stdout}${first.stderr}`);
  const firstReport = JSON.parse(first.stdout) as { changed: number; results: unknown[] };
  const second = JSON.parse(timed(applyArgs).stdout) as { changed: number; results: unknown[] };
  if (second.changed !== 0) throw new Error(`the second apply changed ${second.changed} tasks: not converged`);
  progress(`converged: ${second.results.length} tasks, first apply changed ${firstReport.changed}; timing ${runs} converged applies`);
  const applies = Array.from({ length: runs }, () => timed(applyArgs));
  for (const a of applies) if (a.status !== 0) throw new Error(`a converged apply exited ${a.status}: ${a.stderr}`);
  const applyWall = stats(Array.from({ length: runs }, () => wallMs(applyArgs).ms));
  const applyRss = stats(applies.map((a) => a.maxRssKb / 1024));

  const planArgs = ['plan', '--config', boot, '--root', join(work, 'empty-root'), '--skip', planSkip, '--json'];
  mkdirSync(join(work, 'empty-root/etc'), { recursive: true });
  writeFileSync(join(work, 'empty-root/etc/os-release'), readFileSync(join(root, 'etc/os-release')));
  progress(`timing plan of the whole example on an empty root (--skip ${planSkip})`);
  const planRuns = Array.from({ length: Math.min(runs, 10) }, () => timed(planArgs));
  const planTasks = (JSON.parse(planRuns[0]?.stdout ?? '{"results":[]}') as { results: unknown[] }).results.length;
  const planWall = stats(planRuns.map((p) => p.seconds * 1000));
  const planRss = stats(planRuns.map((p) => p.maxRssKb / 1024));

  const model = (readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown').trim();
  const version = spawnSync(binary, ['version'], { encoding: 'utf8' }).stdout.trim();
  const lines = [
    `nodeup foundation benchmark — ${version}`,
    `machine: ${cpus().length} cpus (nproc), ${model}; load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on the machine inflates times)`,
    `binary:                 ${binary.replace(repo + '/', '')}`,
    `size raw:               ${mb(rawBytes)} MB (${rawBytes} bytes)`,
    `size xz -6:             ${mb(xzBytes)} MB (${xzBytes} bytes)   goal < 40 MB: ${xzBytes < 40e6 ? 'met' : 'MISSED'}`,
    `version start (${versionMs.tool}): mean ${versionMs.mean.toFixed(1)} ms, min ${versionMs.min.toFixed(1)}, max ${versionMs.max.toFixed(1)}; peak RSS ${(versionRss / 1024).toFixed(1)} MB`,
    `converged apply (${second.results.length} tasks, --only ${only}, ${runs} runs): median ${applyWall.median.toFixed(0)} ms, min ${applyWall.min.toFixed(0)}, max ${applyWall.max.toFixed(0)}   goal < 300 ms: ${applyWall.median < 300 ? 'met' : 'MISSED'}`,
    `converged apply peak RSS: max ${applyRss.max.toFixed(1)} MB, median ${applyRss.median.toFixed(1)} MB   goal < 150 MB: ${applyRss.max < 150 ? 'met' : 'MISSED'}`,
    `plan, whole example on an empty root (${planTasks} tasks, --skip ${planSkip}, ${planRuns.length} runs): median ${planWall.median.toFixed(0)} ms; peak RSS max ${planRss.max.toFixed(1)} MB`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  if (values.record) {
    const file = join(repo, 'bench/RESULTS.md');
    const date = new Date().toISOString().slice(0, 10);
    const row = `| ${date} | ${version.replace(/^nodeup /, '')} | ${cpus().length} × ${model} | ${mb(rawBytes)} | ${mb(xzBytes)} | ${versionMs.mean.toFixed(1)} | ${applyWall.median.toFixed(0)} (${second.results.length} tasks) | ${applyRss.max.toFixed(1)} | ${planWall.median.toFixed(0)} (${planTasks} tasks) / ${planRss.max.toFixed(1)} | ${loadavg()[0]?.toFixed(1)} |\n`;
    recordRow(file, row);
    progress(`recorded a row in ${file}`);
  }
} finally {
  if (values.keep) progress(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
