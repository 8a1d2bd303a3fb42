// Keys of the host-prerequisite tasks, for components that must run after them (kubelet).
import type { TaskKey } from '../../engine/task.ts';

export const kmodFile = '/etc/modules-load.d/kubernetes.conf';
export const sysctlFile = '/etc/sysctl.d/99-kubernetes.conf';
export const kmodKey: TaskKey = `kmod:${kmodFile}`;
export const sysctlKey: TaskKey = `sysctl:${sysctlFile}`;
export const swapKey: TaskKey = 'swap:off';
