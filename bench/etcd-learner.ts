// Benchmark: time for nodeup to add a learner to a 3-member etcd cluster on loopback and promote
// it (add with a backup first, start, catch up, promote with a backup first), for Debian's etcd
// 3.4 and etcd 3.6. Prints the figures; the cluster holds KEYS keys so the learner has data to fetch.
// Usage: node bench/etcd-learner.ts [ROUNDS] [KEYS]
import { backupToStore } from '../src/etcd/backup.ts';
import { ensureMember } from '../src/etcd/join.ts';
import { removeMember } from '../src/etcd/membership.ts';
import { debianEtcd, etcd36, EtcdWorld, writeKeys, type EtcdBinaries } from '../tests/integration/etcd-harness.ts';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';

const rounds = Number(process.argv[2] ?? 5);
const keys = Number(process.argv[3] ?? 10_000);

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
  return `median ${med.toFixed(0)} ms, min ${(s[0] as number).toFixed(0)} ms, max ${(s[s.length - 1] as number).toFixed(0)} ms`;
}

async function bench(bin: EtcdBinaries): Promise<void> {
  const world = await EtcdWorld.create(bin);
  try {
    for (const n of ['node-a', 'node-b', 'node-c']) await world.join(await world.newNode(n));
    await writeKeys(world.clusterClient(), '/bench/', keys);
    const totals: number[] = [];
    const untilStart: number[] = [];
    const startToPromoted: number[] = [];
    const backups: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const t0 = performance.now();
      await backupToStore(world.clusterClient(), world.store, 'main', { reason: 'bench-probe' });
      backups.push(performance.now() - t0);
      const node = await world.newNode(`learner-${r}`);
      let tStart = 0;
      const t1 = performance.now();
      const res = await ensureMember({
        cluster: 'main',
        self: node.self,
        store: world.store,
        client: (eps) => world.client(eps),
        hasData: async () => existsSync(path.join(node.dataDir, 'member', 'snap', 'db')),
        start: async (p) => {
          tStart = performance.now();
          world.spawn(node, p);
        },
      });
      const t2 = performance.now();
      if (res.action !== 'joined') throw new Error(`learner-${r}: ${res.action}`);
      totals.push(t2 - t1);
      untilStart.push(tStart - t1);
      startToPromoted.push(t2 - tStart);
      console.log(`  round ${r}: add+promote ${(t2 - t1).toFixed(0)} ms (until start ${(tStart - t1).toFixed(0)} ms, start to promoted ${(t2 - tStart).toFixed(0)} ms, ${res.promoteAttempts} promote attempts)`);
      // Back to 3 voters for the next round.
      const members = (await world.clusterClient().memberList()).members;
      const id = members.find((m) => m.name === node.self.name)?.id;
      await node.proc?.stop();
      world.nodes.delete(node.self.name);
      if (id) await removeMember(world.clusterClient(), id, { cluster: 'main', store: world.store });
    }
    console.log(`${bin.label}, 3 voters, ${keys} keys, ${rounds} rounds:`);
    console.log(`  learner add + promote (ensureMember):  ${stats(totals)}`);
    console.log(`    of which add (incl. backup):         ${stats(untilStart)}`);
    console.log(`    of which start, catch up, promote:   ${stats(startToPromoted)}`);
    console.log(`  one backup to the state store:         ${stats(backups)}`);
  } finally {
    await world.dispose();
  }
}

console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
for (const pick of [debianEtcd, etcd36]) await bench(pick());
