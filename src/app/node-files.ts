// The user's own files and units from spec.files and spec.units (kOps' fileAssets and hooks).
// Owns: the paths and unit names the user lists; nothing else.
import type { Component } from '../model/component.ts';
import { FileTask } from '../engine/tasks/file.ts';
import { UnitTask } from '../engine/tasks/unit.ts';

export const nodeFilesComponent: Component = {
  name: 'node-files',
  enabled: (m) => m.spec.files.length > 0 || m.spec.units.length > 0,
  build(model, graph) {
    for (const f of model.spec.files) graph.add(new FileTask({ path: f.path, content: f.content, mode: f.mode }));
    for (const u of model.spec.units) {
      graph.add(
        new UnitTask({
          name: u.name,
          unitDir: model.distro.unitDir,
          content: u.content,
          enabled: u.enabled,
          running: u.enabled && !model.bake,
        }),
      );
    }
  },
};
