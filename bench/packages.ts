// Wall time of the package phase on the Debian bookworm root (scripts/fixtures/debian-root.sh):
// cold (nothing installed, no apt lists: one apt-get update + one batched install of the debian-12
// base packages) and converged (everything installed: one dpkg-query). Packages come from a local
// repository on 127.0.0.1, so the cold figure is apt + dpkg work without mirror latency.
// Run through bench/packages.sh. Prints the figures; asserts nothing.
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { captureLog, packagesModel, runPackages } from '../tests/support/packages.ts';
import { RecordingHost, serveDir, sh } from '../tests/integration/packages-support.ts';

const fixture = process.argv[2] ?? '';
const rounds = Number(process.argv[3] ?? '3');

async function once(): Promise<{ cold: number; converged: number[]; commandsCold: number; installed: number }> {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'nodeup-bench-packages-'));
  const root = path.join(work, 'root');
  const repo = path.join(work, 'repo');
  await fsp.mkdir(root);
  await fsp.mkdir(repo);
  await sh('tar', ['-xf', path.join(fixture, 'root.tar'), '-C', root]);
  for (const f of await fsp.readdir(path.join(fixture, 'debs'))) await fsp.copyFile(path.join(fixture, 'debs', f), path.join(repo, f));
  const { stdout } = await sh('dpkg-scanpackages', ['.'], { cwd: repo, maxBuffer: 64 << 20 });
  await fsp.writeFile(path.join(repo, 'Packages'), stdout);
  const sum = createHash('sha256').update(stdout).digest('hex');
  await fsp.writeFile(path.join(repo, 'Release'), `Suite: local\nCodename: local\nDate: ${new Date().toUTCString()}\nSHA256:\n ${sum} ${Buffer.byteLength(stdout)} Packages\n`);
  const server = await serveDir(repo);
  await fsp.writeFile(path.join(root, 'etc/apt/sources.list'), `deb [trusted=yes] ${server.url} ./\n`);
  const mounts = [path.join(root, 'proc'), path.join(root, 'dev')];
  await sh('mount', ['-t', 'proc', 'proc', mounts[0] as string]);
  await sh('mount', ['--bind', '/dev', mounts[1] as string]);
  try {
    const model = packagesModel(await fsp.readFile(path.join(root, 'etc/os-release'), 'utf8'));
    const host = new RecordingHost({ root });
    let t = performance.now();
    const cold = await runPackages(model, host, 'apply', captureLog('warn').log);
    const coldMs = performance.now() - t;
    if (!cold.ok) throw new Error(`cold apply failed: ${JSON.stringify(cold.results.filter((r) => r.error))}`);
    const converged: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      const r = await runPackages(model, new RecordingHost({ root }), 'apply', captureLog('warn').log);
      converged.push(performance.now() - t);
      if (r.changed !== 0) throw new Error('converged apply changed something');
    }
    return { cold: coldMs, converged, commandsCold: host.calls.length, installed: cold.changed };
  } finally {
    for (const m of mounts.reverse()) await sh('umount', ['-l', m]).catch(() => undefined);
    await server.close();
    await fsp.rm(work, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const colds: number[] = [];
const convs: number[] = [];
let info = { commandsCold: 0, installed: 0 };
for (let i = 1; i <= rounds; i++) {
  const r = await once();
  colds.push(r.cold);
  convs.push(...r.converged);
  info = r;
  process.stderr.write(`round ${i}/${rounds}: cold ${r.cold.toFixed(0)} ms, converged ${r.converged.map((x) => x.toFixed(0)).join('/')} ms\n`);
}
console.log(`machine: ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log(`cold package phase (debian-12 base: ${info.installed} packages, ${info.commandsCold} commands): median ${median(colds).toFixed(0)} ms, min ${Math.min(...colds).toFixed(0)} ms, max ${Math.max(...colds).toFixed(0)} ms over ${rounds} runs`);
console.log(`converged package phase (one dpkg-query): median ${median(convs).toFixed(0)} ms, min ${Math.min(...convs).toFixed(0)} ms, max ${Math.max(...convs).toFixed(0)} ms over ${convs.length} runs`);
