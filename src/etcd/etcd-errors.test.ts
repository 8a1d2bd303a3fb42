// etcd's answers are told apart by identity (etcd's fixed error descriptions and gRPC codes, as its
// own Go client does), and the waits built on them run on the retry helper's clock.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { HttpRequest, HttpResponse } from '../engine/host/host.ts';
import { createTestHost } from '../../tests/support/test-host.ts';
import { FileStore } from '../statestore/file-store.ts';
import { EtcdClient, etcdErrorKind, etcdRefusal, isTransient } from './client.ts';
import { promoteWhenCaughtUp } from './membership.ts';

const json = (v: unknown, status = 200): HttpResponse => ({ status, headers: {}, body: Buffer.from(JSON.stringify(v)) });
const refusal = (message: string, code: number, status = 503): HttpResponse => json({ error: message, code, message }, status);

describe('etcd error identity', () => {
  it('maps etcd\'s fixed descriptions to kinds, and nothing else', () => {
    expect(etcdErrorKind('etcdserver: member not found')).toBe('member-not-found');
    expect(etcdErrorKind('etcdserver: unhealthy cluster')).toBe('unhealthy-cluster');
    expect(etcdErrorKind('rpc error: code = Unavailable desc = etcdserver: unhealthy cluster')).toBe('unhealthy-cluster');
    expect(etcdErrorKind('etcdserver: too many learner members in cluster')).toBe('too-many-learners');
    expect(etcdErrorKind('etcdserver: can only promote a learner member which is in sync with leader')).toBe('learner-not-ready');
    expect(etcdErrorKind('etcdserver: can only promote a learner member')).toBe('member-not-learner');
    expect(etcdErrorKind('etcdserver: request timed out, possibly due to previous leader failure')).toBe('timeout');
    // A message that only mentions the words is not that answer.
    expect(etcdErrorKind('key "member not found" is unhealthy cluster data')).toBe('other');
    expect(etcdErrorKind('etcdserver: member not found (cached)')).toBe('other');
  });

  it('a refusal carries its kind and gRPC code; a network failure carries none', async () => {
    const host = await createTestHost({
      http: async (req) => {
        if (new URL(req.url).hostname === 'down') throw new Error('connect ECONNREFUSED');
        return refusal('etcdserver: member not found', 5, 404);
      },
    });
    try {
      const fail = (ep: string): Promise<unknown> => new EtcdClient(host, [ep]).memberRemove('7').then(() => undefined, (e: unknown) => e);
      const gone = await fail('https://a:2379');
      expect(etcdRefusal(gone)).toBe('member-not-found');
      expect(gone).toMatchObject({ details: { grpcCode: 5, status: 404, etcdError: 'member-not-found' } });
      expect(isTransient(gone)).toBe(false);
      const down = await fail('https://down:2379');
      expect(etcdRefusal(down)).toBeUndefined();
      expect(isTransient(down)).toBe(true);
    } finally {
      await host.dispose();
    }
  });
});

describe('promoteWhenCaughtUp', () => {
  async function promoteWith(answers: readonly HttpResponse[]): Promise<{ result: unknown; promotes: number; virtualMs: number }> {
    let promotes = 0;
    let learner = true;
    const host = await createTestHost({
      http: async (req: HttpRequest) => {
        const u = new URL(req.url);
        switch (u.pathname) {
          case '/v3/cluster/member/list':
            return json({
              header: { cluster_id: '1' },
              members: [
                { ID: '1', name: 'a', peerURLs: ['https://a:2380'], clientURLs: ['https://a:2379'] },
                { ID: '2', name: 'b', peerURLs: ['https://b:2380'], clientURLs: ['https://b:2379'], isLearner: learner },
              ],
            });
          case '/v3/maintenance/status':
            return json({ header: { member_id: u.hostname === 'a' ? '1' : '2', cluster_id: '1' }, version: '3.6.16', leader: '1', raftIndex: '10', isLearner: u.hostname === 'b' && learner });
          case '/v3/maintenance/snapshot':
            return { status: 200, headers: {}, body: Buffer.from(JSON.stringify({ result: { blob: Buffer.from('db').toString('base64') } }) + '\n') };
          case '/v3/cluster/member/promote': {
            const answer = answers[promotes++] ?? json({});
            if (answer.status === 200) learner = false;
            return answer;
          }
          default:
            throw new Error(`unexpected ${u.pathname}`);
        }
      },
    });
    try {
      const store = new FileStore(pathToFileURL(path.join(host.root, 'store')).toString());
      const client = new EtcdClient(host, ['https://a:2379']);
      const result = await promoteWhenCaughtUp(client, '2', { cluster: 'main', store, sleep: (ms) => host.sleep(ms), now: () => host.now(), timeoutMs: 60_000 }).catch(
        (e: unknown) => e,
      );
      return { result, promotes, virtualMs: host.virtualTime };
    } finally {
      await host.dispose();
    }
  }

  it('waits out a learner that is not in sync yet, on the host clock', async () => {
    const notReady = refusal('etcdserver: can only promote a learner member which is in sync with leader', 9, 400);
    const r = await promoteWith([notReady, notReady, json({})]);
    expect(r.result).toEqual({ attempts: 3 });
    expect(r.promotes).toBe(3);
    expect(r.virtualMs).toBe(100 + 200);
  });

  it('gives up at the deadline, counted in virtual time', async () => {
    const notReady = refusal('etcdserver: can only promote a learner member which is in sync with leader', 9, 400);
    const r = await promoteWith(Array.from({ length: 1000 }, () => notReady));
    expect(etcdRefusal(r.result)).toBe('learner-not-ready');
    expect(r.virtualMs).toBeGreaterThan(60_000);
    expect(r.virtualMs).toBeLessThan(62_000);
  });

  it('does not wait out a refusal that will not clear', async () => {
    const r = await promoteWith([refusal('etcdserver: member not found', 5, 404), json({})]);
    expect(etcdRefusal(r.result)).toBe('member-not-found');
    expect(r.promotes).toBe(1);
    expect(r.virtualMs).toBe(0);
  });
});
