// Golden plans of the packages component for every row of the distro table, from fixture roots
// holding each release's real /etc/os-release and an empty package database (nothing installed,
// no apt lists). Ubuntu, RHEL, Rocky, AlmaLinux, CentOS Stream and Amazon Linux mirrors are not
// reachable from these machines, so these plans (not real installs) are what proves those rows;
// Debian and the dnf path run for real in tests/integration/packages-{apt,dnf}.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { createTestHost, type TestHost } from '../support/test-host.ts';
import { renderPlan } from '../../src/engine/plan-printer.ts';
import { runPreflight } from '../../src/app/preflight.ts';
import { packagesComponent } from '../../src/packages/component.ts';
import { distros } from '../../src/model/distros.ts';
import { captureLog, fixtureOsRelease, packagesModel, runPackages } from '../support/packages.ts';

let hosts: TestHost[] = [];
afterEach(async () => {
  for (const h of hosts) await h.dispose();
  hosts = [];
});

async function plan(id: string, packages: Record<string, unknown> = {}): Promise<string> {
  const host = await createTestHost({
    fixture: id,
    commands: [
      // An empty package database: every query answers "not installed".
      { match: /^dpkg-query /, exitCode: 1, stderr: 'dpkg-query: no packages found matching\n' },
      { match: /^rpm /, exitCode: 1, stdout: '' },
    ],
  });
  hosts.push(host);
  const model = packagesModel(await fixtureOsRelease(id), packages);
  const report = await runPackages(model, host, 'plan', captureLog().log);
  const preflight = runPreflight(model, [packagesComponent], []).filter((p) => !p.ok).map((p) => `preflight would fail: [${p.name}] ${p.message ?? ''}\n`);
  const head = `# nodeup plan, packages component, ${model.distro.name} (${model.distro.id}), package manager: ${model.distro.packageManager}\n`;
  const skipped = model.distro.packageManager === 'none' ? `# packages: skipped (${model.distro.name} has no package manager)\n` : '';
  const text = head + skipped + renderPlan(report) + preflight.join('');
  expect(host.commandLog().every((c) => /^(dpkg-query|rpm) /.test(c))).toBe(true);
  return text.replaceAll(host.root, '<root>');
}

describe('golden plans: packages on an empty root', () => {
  it.each(distros.map((d) => d.id))('%s', async (id) => {
    await expect(await plan(id)).toMatchFileSnapshot(`packages-plans/${id}/plan.txt`);
  });

  it.each(['debian-12', 'ubuntu-24.04', 'rocky-9', 'amzn-2023', 'flatcar'])('%s with extra and pinned packages', async (id) => {
    const pin = id.startsWith('rocky') || id.startsWith('amzn') ? { 'containerd.io': '1.7.28-1.el9' } : { containerd: '1.7.24~ds1-6' };
    await expect(await plan(id, { extra: ['jq'], pin })).toMatchFileSnapshot(`packages-plans/${id}/plan-extra-pin.txt`);
  });
});
