// Test helper: the context a run lends its tasks (a silent log, no notifications, and the given
// state store, else one that refuses every use so a test never reads an empty store by accident).
import { silentLogger } from '../../src/engine/log.ts';
import { noStateStore, type StateStore } from '../../src/engine/state-store.ts';
import type { ApplyContext } from '../../src/engine/task.ts';

export function taskContext(store: StateStore = noStateStore): ApplyContext {
  return { store, log: silentLogger, notifiedBy: [] };
}
