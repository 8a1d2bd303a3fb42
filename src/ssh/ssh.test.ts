import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../engine/errors.ts';
import { asRoot, shq } from './reprovision.ts';
import { runRollout, runStaged } from './rollout.ts';
import { instanceHosts, knownHostKeys, parseTarget, targetName, type ListedInstance } from './target.ts';

describe('parseTarget', () => {
  it.each([
    ['node-1', { user: 'root', host: 'node-1', port: 22 }, 'node-1'],
    ['admin@10.0.0.5:2222', { user: 'admin', host: '10.0.0.5', port: 2222 }, '10.0.0.5:2222'],
    ['ubuntu@[fd00::1]:22', { user: 'ubuntu', host: 'fd00::1', port: 22 }, '[fd00::1]'],
  ])('%s', (spec, want, name) => {
    expect(parseTarget(spec)).toEqual(want);
    expect(targetName(parseTarget(spec))).toBe(name);
  });
  it.each(['', 'a@b@c', 'host:99999', 'host;rm -rf /'])('refuses %j', (spec) => {
    expect(() => parseTarget(spec)).toThrow(AgentError);
  });
});

describe('instanceHosts (nodeup ssh apply --instances)', () => {
  const cp: ListedInstance = { name: 'c1-cp-1', cluster: 'c1', instanceGroup: 'control-plane', state: 'running', role: 'control-plane', ssh: { host: '127.0.0.1', port: 40022 } };
  const w: ListedInstance = { name: 'nodes-1', cluster: 'c1', instanceGroup: 'nodes', state: 'running', role: 'worker', ssh: { host: '10.0.1.7', port: 22 } };
  const other: ListedInstance = { name: 'x-1', cluster: 'c2', instanceGroup: 'nodes', state: 'stopped', role: 'worker' };

  it("takes the cluster's instances with their SSH address and role, in the provider's order", () => {
    expect(instanceHosts([w, other, cp], 'c1')).toEqual([
      { name: 'nodes-1', target: { user: 'root', host: '10.0.1.7', port: 22 }, controlPlane: false },
      { name: 'c1-cp-1', target: { user: 'root', host: '127.0.0.1', port: 40022 }, controlPlane: true },
    ]);
    expect(instanceHosts([w], 'c1', 'admin')[0]?.target.user).toBe('admin');
  });

  it("keeps the boot config's instance group only, and says which groups there are when none matches", () => {
    expect(instanceHosts([w, cp], 'c1', 'root', 'nodes').map((h) => h.name)).toEqual(['nodes-1']);
    // A stopped instance of another group does not stop this group's rollout.
    expect(instanceHosts([w, { ...cp, state: 'stopped' }], 'c1', 'root', 'nodes').map((h) => h.name)).toEqual(['nodes-1']);
    expect(() => instanceHosts([w, cp], 'c1', 'root', 'gpu')).toThrow(/no instance of instance group gpu \(the boot config's\); the cluster's groups: nodes, control-plane/);
  });

  it('refuses a rollout that would leave an instance out, naming it', () => {
    expect(() => instanceHosts([w, other], 'c3')).toThrow(/--instances c3: the provider lists no instance of that cluster/);
    expect(() => instanceHosts([cp, { ...w, state: 'stopped' }], 'c1')).toThrow(/nodes-1 \(stopped\) is not running: start or delete them/);
    expect(() => instanceHosts([cp, { name: 'n-2', cluster: 'c1', instanceGroup: 'nodes', state: 'running', role: 'worker' }], 'c1')).toThrow(/n-2 is without an SSH address/);
    const { role: _r, ...noRole } = w;
    expect(() => instanceHosts([cp, noRole], 'c1')).toThrow(/nodes-1 is of no recorded role .*--control-plane HOST/);
  });
});

describe('knownHostKeys', () => {
  const k1 = Buffer.from('key-one').toString('base64');
  const k2 = Buffer.from('key-two').toString('base64');
  const salt = Buffer.from('0123456789abcdef0123');
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.9]:2222').digest('base64')}`;
  const text = [
    '# comment',
    `node-1,10.0.0.1 ssh-ed25519 ${k1}`,
    `[10.0.0.2]:2222 ssh-ed25519 ${k2}`,
    `*.example.com,!bad.example.com ssh-ed25519 ${k1}`,
    `${hashed} ssh-ed25519 ${k2}`,
    `@revoked node-1 ssh-ed25519 ${k2}`,
    `node-1 ssh-ed25519 ${k2}`,
  ].join('\n');
  it.each([
    ['node-1', 22, ['key-one']], // key-two is revoked for node-1
    ['10.0.0.1', 22, ['key-one']],
    ['10.0.0.2', 2222, ['key-two']],
    ['10.0.0.2', 22, []], // a non-default port is part of the name
    ['a.example.com', 22, ['key-one']],
    ['bad.example.com', 22, []],
    ['10.0.0.9', 2222, ['key-two']], // hashed entry
  ])('%s:%d', (host, port, want) => {
    expect(knownHostKeys(text, host, port).map((b) => b.toString())).toEqual(want);
  });
});

describe('runRollout', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  it('keeps at most `parallel` jobs running', async () => {
    let active = 0;
    let peak = 0;
    const out = await runRollout(['a', 'b', 'c', 'd', 'e'], { parallel: 2 }, async (h) => {
      active++;
      peak = Math.max(peak, active);
      await sleep(10);
      active--;
      return h.toUpperCase();
    });
    expect(peak).toBe(2);
    expect(out.map((o) => (o.status === 'ok' ? o.result : o.status))).toEqual(['A', 'B', 'C', 'D', 'E']);
  });
  it('stops at the first failure: running jobs finish, later hosts are skipped', async () => {
    const started: string[] = [];
    const out = await runRollout(['a', 'b', 'c', 'd'], { parallel: 2 }, async (h) => {
      started.push(h);
      await sleep(h === 'a' ? 5 : 20);
      if (h === 'a') throw new Error('a broke');
      return h;
    });
    expect(started).toEqual(['a', 'b']);
    expect(out.map((o) => o.status)).toEqual(['failed', 'ok', 'skipped', 'skipped']);
    expect(out[0]?.status === 'failed' && out[0].message).toBe('a broke');
  });
  it('goes on with continueOnError', async () => {
    const out = await runRollout(['a', 'b', 'c'], { parallel: 1, continueOnError: true }, async (h) => {
      if (h === 'b') throw new Error('b broke');
      return h;
    });
    expect(out.map((o) => o.status)).toEqual(['ok', 'failed', 'ok']);
  });
});

describe('runStaged', () => {
  it('runs the stages in order, each at its own parallelism; a failure skips the later stages', async () => {
    const order: string[] = [];
    const ok = await runStaged([{ hosts: ['cp1', 'cp2'], parallel: 1 }, { hosts: ['w1', 'w2', 'w3'], parallel: 3 }], {}, async (h) => {
      order.push(h);
      return h;
    });
    expect(ok.map((o) => o.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(order.slice(0, 2)).toEqual(['cp1', 'cp2']);
    const broken = await runStaged([{ hosts: ['cp1', 'cp2'], parallel: 1 }, { hosts: ['w1'], parallel: 1 }], {}, async (h) => {
      if (h === 'cp1') throw new Error('not Ready');
      return h;
    });
    expect(broken.map((o) => `${o.host} ${o.status}`)).toEqual(['cp1 failed', 'cp2 skipped', 'w1 skipped']);
  });
});

describe('remote command lines', () => {
  it('quotes arguments and uses sudo -n for other users', () => {
    expect(shq("it's")).toBe(`'it'\\''s'`);
    expect(asRoot('root', 'exec "$@"', ['/usr/local/bin/nodeup', 'apply'])).toBe(`sh -c 'exec "$@"' nodeup-ssh '/usr/local/bin/nodeup' 'apply'`);
    expect(asRoot('admin', 'true')).toBe(`sudo -n sh -c 'true' nodeup-ssh`);
  });
});
