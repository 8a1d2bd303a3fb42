// What a launched machine is handed: its BootConfig, the pins of the nodeup binary it fetches, the
// variables of /etc/nodeup/environment, and the user-data that carries them. Pure.
import { apiVersion, BootConfig, formatIssues } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';
import { renderBootstrapScript, type BinaryArch } from '../bootstrap/render-userdata.ts';
import { renderUserData } from './render-user-data.ts';

export interface LaunchBootInput {
  readonly stateStore: string;
  readonly clusterName: string;
  readonly instanceGroup: string;
  readonly nodeConfigHash: string;
  readonly nodeName?: string | undefined;
  readonly assetMirrors: readonly string[];
  readonly s3?: BootConfig['s3'] | undefined;
}

/** The BootConfig a launched node gets, validated (a bad --s3-endpoint or mirror is named here). Pure. */
export function launchBootConfig(b: LaunchBootInput): BootConfig {
  const res = BootConfig.safeParse({
    apiVersion,
    kind: 'BootConfig',
    stateStore: b.stateStore,
    clusterName: b.clusterName,
    instanceGroup: b.instanceGroup,
    nodeConfigHash: b.nodeConfigHash,
    ...(b.s3 ? { s3: b.s3 } : {}),
    assetMirrors: [...b.assetMirrors],
    ...(b.nodeName ? { nodeName: b.nodeName } : {}),
  });
  if (!res.success) {
    const problems = formatIssues(res.error.issues);
    throw new AgentError('USAGE', `boot config of ${b.nodeName ?? b.instanceGroup}: ${problems.join('; ')} (check --state-store, --s3-endpoint, --asset-mirror)`, { details: { problems } });
  }
  return res.data;
}

/** Where machines fetch nodeup and the SHA-256 each architecture's binary must have. */
export interface BinaryPins {
  /** Base URLs serving `nodeup-linux-<arch>.xz` (or the plain `nodeup-linux-<arch>`). */
  readonly mirrors: readonly string[];
  readonly sha256: Partial<Readonly<Record<BinaryArch, string>>>;
}

/** The variables of a guest's /etc/nodeup/environment: apply arguments for every run of nodeup.service, lab S3 credentials. Pure. */
export function launchEnvironment(applyArgs: readonly string[], credentials: readonly (readonly [string, string])[] = []): [string, string][] {
  return [...(applyArgs.length > 0 ? [['NODEUP_APPLY_ARGS', applyArgs.join(' ')] as [string, string]] : []), ...credentials.map(([k, v]) => [k, v] as [string, string])];
}

export interface MachineUserData {
  readonly name: string;
  readonly boot: BootConfig;
  readonly pins: BinaryPins;
  readonly files: readonly { readonly path: string; readonly content: string | Buffer; readonly mode: string }[];
  readonly environment: readonly (readonly [string, string])[];
  readonly reportUrl?: string | undefined;
  readonly preCommands?: readonly string[] | undefined;
}

/** One machine's user-data: the bootstrap script of `nodeup userdata`, in the launch wrapper. Pure. */
export function machineUserData(m: MachineUserData): string {
  const bootstrap = renderBootstrapScript({ bootConfig: m.boot, mirrors: m.pins.mirrors, sha256: m.pins.sha256 });
  return renderUserData({
    nodeName: m.name,
    bootstrap,
    ...(m.pins.sha256.amd64 ? { binarySha256: m.pins.sha256.amd64 } : {}),
    files: m.files,
    environment: m.environment,
    ...(m.reportUrl ? { reportUrl: m.reportUrl } : {}),
    ...(m.preCommands ? { preCommands: m.preCommands } : {}),
  });
}

const credentialNames = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']);

/**
 * Reads `--s3-credentials-file`: `AWS_ACCESS_KEY_ID=...` and `AWS_SECRET_ACCESS_KEY=...` lines
 * (optionally `AWS_SESSION_TOKEN`, `export ` prefixes, quotes, # comments). Pure.
 */
export function parseS3Credentials(text: string, file: string): [string, string][] {
  const out = new Map<string, string>();
  text.split('\n').forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Z_][A-Z0-9_]*)\s*=\s*(.*)$/.exec(line);
    const name = m?.[1];
    if (!m || !name || !credentialNames.has(name)) {
      throw new AgentError('USAGE', `--s3-credentials-file ${file}: line ${n + 1}: expected AWS_ACCESS_KEY_ID=..., AWS_SECRET_ACCESS_KEY=... or AWS_SESSION_TOKEN=...`, {
        details: { file, line: n + 1 },
      });
    }
    out.set(name, (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2'));
  });
  for (const need of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    if (!out.get(need)) throw new AgentError('USAGE', `--s3-credentials-file ${file}: no ${need}=... line`, { details: { file, missing: need } });
  }
  return [...out.entries()];
}
