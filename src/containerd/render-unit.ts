// Pure renderer for nodeup's own containerd.service (based on upstream's unit): delegated cgroups,
// protected from the OOM killer, no process or file limits, restarted when it dies.
import { renderUnit } from '../engine/tasks/render-unit.ts';

export interface ContainerdUnitInput {
  /** Full path of the containerd binary. */
  readonly binary: string;
  readonly config: string;
  /** Directories put first on PATH (where the shim and runc live). */
  readonly pathDirs: readonly string[];
  /** Binaries to relabel before start on SELinux distros (files copied in keep a wrong context). */
  readonly restorecon?: readonly string[];
}

export function renderContainerdUnit(i: ContainerdUnitInput): string {
  const path = [...new Set([...i.pathDirs, '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].join(':');
  return renderUnit({
    Unit: {
      Description: 'containerd container runtime',
      Documentation: 'https://containerd.io',
      After: 'network.target local-fs.target dbus.service',
    },
    Service: {
      Environment: `PATH=${path}`,
      ExecStartPre: ['-/sbin/modprobe overlay', ...(i.restorecon && i.restorecon.length > 0 ? [`-/usr/sbin/restorecon ${i.restorecon.join(' ')}`] : [])],
      ExecStart: `${i.binary} --config ${i.config}`,
      Type: 'notify',
      Delegate: true,
      KillMode: 'process',
      Restart: 'always',
      RestartSec: 5,
      LimitNPROC: 'infinity',
      LimitCORE: 'infinity',
      LimitNOFILE: 1048576,
      TasksMax: 'infinity',
      OOMScoreAdjust: -999,
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}
