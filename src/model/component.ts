// Layer: model. Imports src/engine and each component's leaf schema.ts, nothing else of the project.
import type { GraphBuilder } from '../engine/graph.ts';
import type { NodeModel } from './node-model.ts';

/** A named check run before any change; `--ignore-preflight NAME` skips it. */
export interface PreflightCheck {
  readonly name: string;
  /** Pure: a problem description, or undefined when the check passes. */
  check(model: NodeModel): string | undefined;
}

export interface Component {
  /** Also the log field and the --only/--skip name. */
  readonly name: string;
  enabled(model: NodeModel): boolean;
  /** Pure: turns the model into tasks. */
  build(model: NodeModel, graph: GraphBuilder): void;
  preflight?(model: NodeModel): readonly PreflightCheck[];
  /** Pure: what the plan and the log should tell about this node (e.g. "skipped: no package manager"). */
  notes?(model: NodeModel): readonly string[];
}
