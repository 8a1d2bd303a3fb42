// Issue 7, scenario 4: the power goes out in the middle of nodeup's first run, and the next boot
// converges by itself. A single control plane from the stock image is launched through `nodeup
// launch`; when its first run has been going for a random number of seconds (printed; fixed with
// NODEUP_VM_POWER_CUT_S) its QEMU is SIGKILLed: no shutdown, the guest's page cache is lost, half
// written files and half-started services stay as they are. The same disk then boots again with the
// same QEMU command line and no orchestrator, no seed server and no help: nodeup.service, enabled
// by the bootstrap script before the first apply, runs again at boot. Checked: that run converges,
// the node is Ready, kube-proxy (nftables mode) and CoreDNS (nodeup's add-on, with its
// control-plane toleration) turn Ready on it, and a further `nodeup apply` changes nothing. The
// Service checks themselves (DNS, ClusterIP, NodePort across nodes) are cluster.test.ts's and
// baked.test.ts's: this scenario has one node.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPodsReady } from './kube-checks.ts';
import { Lab, kubectl } from './lab.ts';

const lab = new Lab('vmpc');
const cpName = 'vmpc-cp-1';
const cpIp = '192.168.77.11';

describe('power cut during the first run', () => {
  let cpConfig = '';

  beforeAll(async () => {
    await lab.setup();
    cpConfig = await lab.writeFile('control-plane.yaml', lab.nodeConfig({ role: 'control-plane', ig: 'control-plane', cpIp, services: true }));
    lab.mark('fixtures ready');
  });

  afterAll(() => lab.teardown());

  it('a control plane cut off mid-run converges at the next boot', async () => {
    try {
      const launched = lab.launch(cpName, { nodeConfig: cpConfig, memoryMiB: 3072 });
      await lab.waitFor('nodeup to start in the guest', 900_000, async () => {
        const events: string[] = await lab.eventsOf(cpName).catch(() => []);
        return events.includes('started') ? { ok: true } : { last: events.join(',') || 'no events yet' };
      }, 1000);
      lab.mark('nodeup started');
      // Somewhere in the first run: packages, downloads, PKI, etcd, the static pods (it lasts 150-250 s under TCG).
      const cutAfterS = Number(process.env.NODEUP_VM_POWER_CUT_S ?? 5 + Math.floor(Math.random() * 70));
      process.stdout.write(`power cut ${cutAfterS}s after nodeup started (NODEUP_VM_POWER_CUT_S=${cutAfterS} repeats it)\n`);
      await new Promise((r) => setTimeout(r, cutAfterS * 1000));
      expect((await lab.eventsOf(cpName)).includes('receipt'), 'the first run had already finished at the cut: nothing was interrupted').toBe(false);
      const progress = await lab.ssh(cpName, 'journalctl -u nodeup.service -o cat --no-pager | grep -c \'"msg":"applying"\'; ls /var/lib/nodeup /etc/kubernetes/manifests 2>&1 | tr "\\n" " "', 20_000);
      process.stdout.write(`at the cut: ${progress.stdout.split('\n')[0] ?? '?'} tasks applied so far; ${progress.stdout.split('\n').slice(1).join(' ')}\n`);
      await lab.powerCut(cpName);
      lab.mark('power cut');
      const first = await launched;
      expect(first.code, 'nodeup launch reports the machine that stopped').not.toBe(0);

      await lab.powerOn(cpName);
      lab.mark('powered on again');
      const receipt = await lab.receiptOfThisBoot(cpName);
      lab.mark('nodeup.service converged at the next boot');
      expect(receipt.result).toBe('converged');
      process.stdout.write(`${cpName}: run after the power cut: ${receipt.tasks.length} tasks, ${receipt.tasks.filter((t) => t.status === 'changed').length} changed\n`);

      await lab.nodesReady(cpName, [cpName]);
      lab.mark('node Ready');
      const nodes = await lab.ssh(cpName, kubectl('get nodes -o name'));
      expect(nodes.stdout.trim()).toBe(`node/${cpName}`);
      await systemPodsReady(lab, cpName, 'kube-proxy-', 1);
      await systemPodsReady(lab, cpName, 'coredns-', 1);
      lab.mark('kube-proxy and CoreDNS Ready');
      const again = await lab.applyInGuest(cpName);
      expect(again.tasks.filter((t) => t.status !== 'unchanged'), 'a further apply').toEqual([]);
      lab.mark('further apply: 0 changes');
      await lab.printTimings();
    } catch (err: unknown) {
      await lab.diagnoseAll();
      throw err;
    }
  });
});
