// Keys of etcd's tasks that other components order against (addons waits for the local members).
import type { TaskKey } from '../../engine/task.ts';

/** `etcd-member:main`: the task that makes this node a member of one etcd cluster. */
export function etcdMemberKey(cluster: string): TaskKey {
  return `etcd-member:${cluster}`;
}
