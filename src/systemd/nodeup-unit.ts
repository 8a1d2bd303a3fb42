// nodeup.service: a oneshot that runs apply at every boot. cloud-init only installs it and returns
// (kOps' kops-configuration.service does the same); a failed run retries every 30 s.
import { renderUnit } from './render-unit.ts';

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
      EnvironmentFile: '-/etc/nodeup/environment',
      ExecStart: `${i.binary} apply --config ${i.config} --log-format json`,
      Restart: 'on-failure',
      RestartSec: '30s',
      TimeoutStartSec: 'infinity',
      RemainAfterExit: false,
    },
    Install: { WantedBy: 'multi-user.target' },
  });
}
