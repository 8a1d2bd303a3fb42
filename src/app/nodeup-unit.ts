// nodeup.service: a oneshot that runs apply at every boot. cloud-init only installs it and returns
// (kOps' kops-configuration.service does the same); a failed run retries every 30 s.
//
// /etc/nodeup/environment (optional, KEY=value lines) is its EnvironmentFile: the AWS SDK's default
// chain reads AWS_* from it (lab S3 servers; real clouds use instance roles), and
// NODEUP_APPLY_ARGS holds extra `apply` arguments for every run (e.g. `--only node-files`): the
// unquoted `$NODEUP_APPLY_ARGS` in ExecStart is split into words by systemd, and is no words at
// all when the variable is unset.
import { rolledBackExitCode } from '../engine/errors.ts';
import { renderUnit } from '../engine/tasks/render-unit.ts';
import { UnitTask } from '../engine/tasks/unit.ts';

export const nodeupEnvironmentFile = '/etc/nodeup/environment';

export interface NodeupUnitInput {
  readonly binary: string;
  readonly config: string;
}

export function renderNodeupUnit(i: NodeupUnitInput): string {
  return renderUnit({
    Unit: {
      Description: 'nodeup: converge this machine into a Kubernetes node',
      Wants: 'network-online.target',
      After: 'network-online.target',
      // An image baked with the unit enabled boots quietly until user-data writes the boot config.
      ConditionPathExists: i.config,
    },
    Service: {
      Type: 'oneshot',
      EnvironmentFile: `-${nodeupEnvironmentFile}`,
      ExecStart: `${i.binary} apply --config ${i.config} --log-format json $NODEUP_APPLY_ARGS`,
      Restart: 'on-failure',
      RestartSec: '30s',
      // 3: apply --rollback-on-failure rolled the node back to its last good config; retrying the
      // config that failed every 30 s would break and roll back the node again and again.
      RestartPreventExitStatus: String(rolledBackExitCode),
      TimeoutStartSec: 'infinity',
      RemainAfterExit: false,
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}

export interface NodeupUnitTaskInput extends NodeupUnitInput {
  readonly unitDir: string;
  readonly enabled: boolean;
  /** Start it now without waiting (install-unit); never in an image. */
  readonly noBlock?: boolean;
}

/** The one task that installs nodeup.service: never left running by the install itself (a oneshot). */
export function nodeupUnitTask(i: NodeupUnitTaskInput): UnitTask {
  return new UnitTask({
    name: 'nodeup.service',
    unitDir: i.unitDir,
    content: renderNodeupUnit({ binary: i.binary, config: i.config }),
    enabled: i.enabled,
    running: false,
    ...(i.noBlock === undefined ? {} : { noBlock: i.noBlock }),
  });
}
