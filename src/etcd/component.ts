// Layer: component. Imports src/engine and src/model only, never another component's folder.
// etcd: this control-plane node's members of the main and events clusters (kOps runs both), as
// static pods or systemd units, with their certificates and a scheduled backup timer.
// Owns: /etc/kubernetes/pki/etcd/ (CA certificates, per-cluster server and peer pairs, nodeup's
// client pair), /etc/kubernetes/manifests/etcd-<cluster>.yaml or etcd-<cluster>.service,
// <dataDirRoot>/<cluster>, /var/lib/nodeup/etcd-<cluster>.json, nodeup-etcd-backup.{service,timer};
// in the state store: etcd/<cluster>/ (created marker, member registrations) and backups/etcd/<cluster>/.
// With spec.etcd.memberCount, a joining replacement removes the dead voter etcd refuses it for, and
// etcd-membership:<cluster> removes dead voters while the cluster is larger than wanted.
// Runs after: the PKI tasks (pki:cluster); kubelet runs the static pods.
// Version: the versions table's etcd (3.6 for Kubernetes >= 1.34, 3.5 before) unless spec.etcd.version.
import type { Component } from '../model/component.ts';
import type { NodeModel } from '../model/node-model.ts';
import type { TaskKey } from '../engine/task.ts';
import { DirTask } from '../engine/tasks/file.ts';
import { CertTask, ClusterPkiTask, StoreFileTask, clusterPkiKey } from '../engine/pki/tasks.ts';
import { storeLayout } from '../engine/state-store.ts';
import { UnitTask } from '../engine/tasks/unit.ts';
import { DeadMemberTask } from './dead-member-task.ts';
import { EtcdMemberTask, etcdStatePath } from './member-task.ts';
import { etcdMemberKey } from '../model/paths/etcd.ts';
import { clientUrl, peerUrl, renderBackupService, renderBackupTimer, type EtcdTlsPaths } from './render-manifest.ts';
import type { EtcdClusterSpec } from './schema.ts';

export const etcdPkiDir = '/etc/kubernetes/pki/etcd';
export const etcdCaPath = `${etcdPkiDir}/ca.crt`;
export const etcdPeerCaPath = `${etcdPkiDir}/peer-ca.crt`;
export const nodeupClientCert = `${etcdPkiDir}/nodeup-client.crt`;
export const nodeupClientKey = `${etcdPkiDir}/nodeup-client.key`;
export const backupUnitName = 'nodeup-etcd-backup.service';
export const backupTimerName = 'nodeup-etcd-backup.timer';
const kubeletUnit: TaskKey = 'unit:kubelet.service';

/** The etcd version this node runs: spec.etcd.version, else the versions table's (3.6 from Kubernetes 1.34 on, 3.5 before). Pure. */
export function etcdVersion(model: NodeModel): string {
  return model.spec.etcd.version ?? model.versions.etcd;
}

/** registry.k8s.io/etcd publishes "<version>-0" tags. Pure. */
export function etcdImage(model: NodeModel): string {
  return `${model.spec.etcd.image}:${etcdVersion(model)}-0`;
}

export function tlsPaths(cluster: string): EtcdTlsPaths {
  return {
    serverCert: `${etcdPkiDir}/${cluster}/server.crt`,
    serverKey: `${etcdPkiDir}/${cluster}/server.key`,
    peerCert: `${etcdPkiDir}/${cluster}/peer.crt`,
    peerKey: `${etcdPkiDir}/${cluster}/peer.key`,
    clientCa: etcdCaPath,
    peerCa: etcdPeerCaPath,
  };
}

function memberTask(model: NodeModel, c: EtcdClusterSpec, runner: readonly TaskKey[]): EtcdMemberTask {
  const ip = model.nodeIp;
  const e = model.spec.etcd;
  return new EtcdMemberTask({
    cluster: c.name,
    self: { name: model.nodeName, peerUrl: peerUrl(ip, c.peerPort), clientUrl: clientUrl(ip, c.clientPort) },
    advertiseIp: ip,
    clientPort: c.clientPort,
    peerPort: c.peerPort,
    dataDir: `${e.dataDirRoot}/${c.name}`,
    tls: tlsPaths(c.name),
    timing: { heartbeatIntervalMs: e.heartbeatIntervalMs, electionTimeoutMs: e.electionTimeoutMs },
    clientCert: nodeupClientCert,
    clientKey: nodeupClientKey,
    pkiDir: etcdPkiDir,
    run:
      e.mode === 'static-pod'
        ? { mode: 'static-pod', manifestPath: `/etc/kubernetes/manifests/etcd-${c.name}.yaml`, image: etcdImage(model) }
        : { mode: 'systemd', unitDir: model.distro.unitDir, binary: e.binary },
    statePath: etcdStatePath(c.name),
    retention: e.backup.retention,
    ...(e.memberCount !== undefined ? { replaceDead: { memberCount: e.memberCount, graceMs: e.deadMemberGraceSeconds * 1000 } } : {}),
    after: [`cert:etcd-${c.name}-server`, `cert:etcd-${c.name}-peer`, 'cert:etcd-nodeup-client', `pki:${etcdCaPath}`, `pki:${etcdPeerCaPath}`, ...runner],
  });
}

/** Removes members whose node is gone once a replacement has joined (only with spec.etcd.memberCount). */
function deadMemberTask(model: NodeModel, member: EtcdMemberTask): DeadMemberTask {
  const e = model.spec.etcd;
  const m = member.spec;
  return new DeadMemberTask({
    cluster: m.cluster,
    self: m.self,
    memberCount: e.memberCount ?? 1,
    graceMs: e.deadMemberGraceSeconds * 1000,
    dataDir: m.dataDir,
    caPath: m.tls.clientCa,
    clientCert: m.clientCert,
    clientKey: m.clientKey,
    retention: m.retention,
    after: [member.key],
  });
}

export const etcdComponent: Component = {
  name: 'etcd',
  enabled: (m) => m.spec.role === 'control-plane' && !m.bake,
  build(model, graph) {
    const e = model.spec.etcd;
    const days = model.spec.controlPlane.certificateValidityDays;
    if (!graph.has(clusterPkiKey)) graph.add(new ClusterPkiTask(model.nodeName));
    const afterPki: TaskKey[] = [clusterPkiKey];
    graph.ensure(new DirTask({ path: etcdPkiDir, mode: 0o755 }));
    graph.ensure(new DirTask({ path: e.dataDirRoot, mode: 0o700 }));
    for (const [p, key] of [[etcdCaPath, 'etcd-ca.crt'], [etcdPeerCaPath, 'etcd-peer-ca.crt']] as const) {
      if (!graph.has(`pki:${p}`)) graph.add(new StoreFileTask({ path: p, storeKey: storeLayout.pki(key), mode: 0o644, after: afterPki }));
    }
    graph.add(
      new CertTask({
        id: 'etcd-nodeup-client',
        ca: 'etcd-ca',
        request: { commonName: 'nodeup', usages: ['client'], validityDays: days },
        output: { kind: 'pem', certPath: nodeupClientCert, keyPath: nodeupClientKey },
        after: afterPki,
      }),
    );
    // Static pods need a running kubelet before the member can answer (when kubelet is in the run).
    const runner: TaskKey[] = e.mode === 'static-pod' && graph.has(kubeletUnit) ? [kubeletUnit] : [];
    const ip = model.nodeIp;
    const names = { dnsNames: [model.nodeName, 'localhost'], ips: [...new Set([ip, '127.0.0.1'])] };
    for (const c of e.clusters) {
      const t = tlsPaths(c.name);
      graph.ensure(new DirTask({ path: `${etcdPkiDir}/${c.name}`, mode: 0o755 }));
      graph.add(
        new CertTask({
          id: `etcd-${c.name}-server`,
          ca: 'etcd-ca',
          request: { commonName: model.nodeName, usages: ['server', 'client'], validityDays: days, ...names },
          output: { kind: 'pem', certPath: t.serverCert, keyPath: t.serverKey },
          after: afterPki,
        }),
      );
      graph.add(
        new CertTask({
          id: `etcd-${c.name}-peer`,
          ca: 'etcd-peer-ca',
          request: { commonName: model.nodeName, usages: ['server', 'client'], validityDays: days, ...names },
          output: { kind: 'pem', certPath: t.peerCert, keyPath: t.peerKey },
          after: afterPki,
        }),
      );
      const member = memberTask(model, c, runner);
      graph.add(member);
      if (e.memberCount !== undefined) graph.add(deadMemberTask(model, member));
    }
    if (e.backup.schedule !== '') {
      const input = { nodeupBinary: '/usr/local/bin/nodeup', bootConfig: '/etc/nodeup/boot.yaml', schedule: e.backup.schedule };
      graph.add(new UnitTask({ name: backupUnitName, unitDir: model.distro.unitDir, content: renderBackupService(input), enabled: false, running: false }));
      graph.add(
        new UnitTask({
          name: backupTimerName,
          unitDir: model.distro.unitDir,
          content: renderBackupTimer(input),
          enabled: true,
          running: true,
          wantedBy: 'timers.target',
          after: [`unit:${backupUnitName}`, ...e.clusters.map((c) => etcdMemberKey(c.name))],
        }),
      );
    }
  },
};
