import { describe, expect, it } from 'vitest';
import type { ClusterHealth } from '../etcd/membership.ts';
import { memberGate } from './etcd-command.ts';

describe('etcd members --check (a rollout gate)', () => {
  const member = (name: string, o: { learner?: boolean; healthy?: boolean; error?: string } = {}) => ({
    member: { id: name, name, peerURLs: [`https://${name}:2380`], clientURLs: [`https://${name}:2379`], isLearner: o.learner ?? false },
    healthy: o.healthy ?? true,
    isLeader: false,
    ...(o.error ? { error: o.error } : {}),
  });
  const health = (members: ReturnType<typeof member>[]): ClusterHealth =>
    ({
      clusterId: '1',
      members,
      voters: members.filter((m) => !m.member.isLearner).length,
      healthyVoters: members.filter((m) => !m.member.isLearner && m.healthy).length,
      leaderId: undefined,
      quorumProven: true,
    });

  it('passes a healthy voter in a cluster with quorum', () => {
    expect(memberGate(health([member('cp-1'), member('cp-2'), member('cp-3', { healthy: false })]), 'cp-1')).toBeUndefined();
  });
  it('fails a missing member, a learner, an unhealthy member, and a cluster without quorum', () => {
    expect(memberGate(health([member('cp-2')]), 'cp-1')).toBe("this node's member cp-1 is not in the member list");
    expect(memberGate(health([member('cp-1', { learner: true }), member('cp-2')]), 'cp-1')).toBe("this node's member cp-1 is still a learner (not voting yet)");
    expect(memberGate(health([member('cp-1', { healthy: false, error: 'connection refused' }), member('cp-2')]), 'cp-1')).toBe("this node's member cp-1 is unhealthy: connection refused");
    expect(memberGate(health([member('cp-1'), member('cp-2', { healthy: false }), member('cp-3', { healthy: false })]), 'cp-1')).toBe('1 of 3 voting members healthy: quorum needs 2');
  });
});
