// The example cluster's runs that both the start-up bench (bench/startup.ts) measures and the build
// (scripts/build.ts) trains the binary's code cache on: the example written to <work>/example, a
// converged `apply` of the 8 tasks a scratch root converges offline, and a whole-graph `plan` (but
// packages: a scratch root has no dpkg to query) on an empty root. Both roots are Debian 12.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const scenarioOnly = 'node-files,prereqs,kube-proxy';

export function exampleScenario(work: string): { example: string[]; apply: string[]; plan: string[] } {
  const osRelease = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n';
  for (const r of ['root', 'empty-root']) {
    mkdirSync(join(work, r, 'etc'), { recursive: true });
    writeFileSync(join(work, r, 'etc/os-release'), osRelease);
  }
  const boot = join(work, 'example/boot-control-plane.yaml');
  return {
    example: ['example', '--dir', join(work, 'example')],
    apply: ['apply', '--config', boot, '--root', join(work, 'root'), '--only', scenarioOnly, '--json'],
    plan: ['plan', '--config', boot, '--root', join(work, 'empty-root'), '--skip', 'packages', '--json'],
  };
}
