// The user-data `nodeup launch` hands a machine: a cloud-config wrapper around the bootstrap script
// of src/bootstrap/render-userdata.ts — byte for byte what `nodeup userdata` renders for clouds,
// Packer and SSH (one payload for every boot path) — adding only what a lab launcher needs:
//  - write_files: the embedded file:// store (when used), a private-link network file,
//    /etc/nodeup/environment (0600: NODEUP_APPLY_ARGS, lab S3 credentials), the bootstrap script,
//    and a small launch script;
//  - runcmd: the launch script, which reports `booted`, runs the pre-commands (private link),
//    reports `fetching` when the binary on disk is not the pinned one, removes a stale receipt, runs
//    the bootstrap script (which installs, enables and starts nodeup.service: a machine powered off
//    in its first run converges at its next boot), reports `started`, waits for the receipt of
//    nodeup.service's first run and POSTs it (`receipt/<node>`).
// Reports go out only when a report URL is given (qemu); without one the launch script just runs
// the bootstrap script. Pure: plain data in, text out.
import * as yaml from 'js-yaml';
import { AgentError } from '../engine/errors.ts';
import { receiptPath as receiptFile } from '../app/receipt.ts';
import { defaultInstallPath as nodeupBinaryPath } from '../bootstrap/render-userdata.ts';

export interface UserDataInput {
  readonly nodeName: string;
  /** The bootstrap script exactly as renderBootstrapScript renders it. */
  readonly bootstrap: string;
  /** The SHA-256 the bootstrap script pins for this machine's binary: another one on disk means a download (`fetching`). */
  readonly binarySha256?: string;
  /** Files written before anything runs (the embedded state store), byte-exact (base64 in the YAML). */
  readonly files: readonly { readonly path: string; readonly content: string | Buffer; readonly mode: string }[];
  /** Variables of /etc/nodeup/environment (nodeup.service's EnvironmentFile), in order; none: no file. */
  readonly environment?: readonly (readonly [string, string])[];
  /** Base URL the guest POSTs `event/<node>/<phase>` and `receipt/<node>` to (no trailing slash). */
  readonly reportUrl?: string;
  /** Shell commands run before the bootstrap script (e.g. `networkctl reload` for a private link). */
  readonly preCommands?: readonly string[];
}

export const bootstrapScriptPath = '/usr/local/lib/nodeup/bootstrap.sh';
export const launchScriptPath = '/usr/local/lib/nodeup/launch-boot.sh';
export const environmentPath = '/etc/nodeup/environment';

/** Single-quotes a word for POSIX sh. Pure. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Characters an environment value may hold: the same line works for systemd's EnvironmentFile and for `. file` in sh. */
const safeValue = /^[A-Za-z0-9 _@%+=:,./-]*$/;

/**
 * /etc/nodeup/environment: `NAME="value"` lines. Values are limited to characters that need no
 * escaping in double quotes, for systemd (which strips the quotes) and for sh alike. Pure.
 */
export function renderEnvironmentFile(vars: readonly (readonly [string, string])[]): string {
  const lines = ['# managed by nodeup launch: the EnvironmentFile of nodeup.service (mode 0600)'];
  for (const [name, value] of vars) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name)) throw new AgentError('USAGE', `environment variable name ${JSON.stringify(name)}: expected capital letters, digits and _`, { details: { name } });
    if (!safeValue.test(value)) {
      throw new AgentError('USAGE', `${name}: the value holds a character other than letters, digits, space and _@%+=:,./- (it must stay one line, unquoted by systemd and sh alike)`, {
        details: { name },
      });
    }
    lines.push(`${name}="${value}"`);
  }
  return lines.join('\n') + '\n';
}

/** The shell script cloud-init runs once (runcmd). Pure. */
export function renderLaunchScript(i: UserDataInput): string {
  const head = ['#!/bin/sh', '# managed by nodeup launch: runs once at first boot (cloud-init runcmd) around the bootstrap script.', 'set -u'];
  const pre = i.preCommands ?? [];
  if (!i.reportUrl) return [...head, ...pre, `rm -f ${receiptFile}`, `exec ${bootstrapScriptPath}`, ''].join('\n');
  const fetching = i.binarySha256
    ? [`if [ "$(sha256sum ${nodeupBinaryPath} 2>/dev/null | cut -d' ' -f1)" != ${shQuote(i.binarySha256)} ]; then post "event/$NODE/fetching" "{\\"uptime\\":$(up)}"; fi`]
    : [];
  return [
    ...head,
    `NODE=${shQuote(i.nodeName)}`,
    `REPORT=${shQuote(i.reportUrl)}`,
    'post() { curl -fsS -m 20 --retry 3 -X POST -H "content-type: application/json" --data-binary "$2" "$REPORT/$1" >/dev/null || echo "nodeup-launch: cannot report $1" >&2; }',
    "up() { cut -d' ' -f1 /proc/uptime; }",
    'fail() { echo "nodeup-launch: $1" >&2; post "event/$NODE/failed" "{\\"uptime\\":$(up),\\"reason\\":\\"$1\\"}"; exit 1; }',
    `post "event/$NODE/booted" "{\\"uptime\\":$(up)}"`,
    ...pre,
    ...fetching,
    `rm -f ${receiptFile}`,
    `${bootstrapScriptPath} || fail "the bootstrap script failed (exit $?)"`,
    `post "event/$NODE/started" "{\\"uptime\\":$(up)}"`,
    "# nodeup.service's first run writes the receipt (the bootstrap script started it without waiting).",
    'waited=0',
    `while [ ! -s ${receiptFile} ]; do`,
    '  restarts=$(systemctl show -p NRestarts --value nodeup.service 2>/dev/null || true)',
    '  if [ "${restarts:-0}" != 0 ] || systemctl is-failed --quiet nodeup.service; then fail "nodeup.service failed before writing a receipt: see journalctl -u nodeup.service"; fi',
    '  [ "$waited" -lt 10800 ] || fail "no receipt from nodeup.service within 3 hours"',
    '  sleep 2',
    '  waited=$((waited + 2))',
    'done',
    `post "receipt/$NODE" @${receiptFile}`,
    '',
  ].join('\n');
}

/** The whole cloud-config. Pure; stable key order. */
export function renderUserData(i: UserDataInput): string {
  if (!i.bootstrap.startsWith('#!/bin/bash\n')) throw new AgentError('USAGE', 'user-data: the bootstrap script must be what renderBootstrapScript renders (#!/bin/bash)');
  const env = i.environment ?? [];
  const doc = {
    hostname: i.nodeName,
    preserve_hostname: false,
    write_files: [
      ...i.files.map((f) => ({ path: f.path, permissions: f.mode, owner: 'root:root', encoding: 'b64', content: Buffer.from(f.content).toString('base64') })),
      ...(env.length > 0 ? [{ path: environmentPath, permissions: '0600', owner: 'root:root', content: renderEnvironmentFile(env) }] : []),
      { path: bootstrapScriptPath, permissions: '0700', owner: 'root:root', content: i.bootstrap },
      { path: launchScriptPath, permissions: '0700', owner: 'root:root', content: renderLaunchScript(i) },
    ],
    runcmd: [[launchScriptPath]],
  };
  return '#cloud-config\n# managed by nodeup launch: bootstrap.sh below is byte for byte what `nodeup userdata` renders\n' + yaml.dump(doc, { lineWidth: -1, noRefs: true });
}
