// The user-data `nodeup launch` hands a machine: a cloud-config that writes the boot config (and,
// for local guests, an embedded copy of the instance group's NodeConfig as a file:// state store),
// fetches the nodeup binary by SHA-256, runs `nodeup apply` once, installs nodeup.service for later
// boots, and reports progress and the receipt back to the orchestrator when a report URL is given.
// Pure: plain data in, text out.
import * as yaml from 'js-yaml';

export interface UserDataInput {
  readonly nodeName: string;
  /** The BootConfig document, as YAML. */
  readonly bootConfig: string;
  /** Files written before nodeup runs (the embedded state store), byte-exact (base64 in the YAML). */
  readonly files: readonly { readonly path: string; readonly content: string | Buffer; readonly mode: string }[];
  /** Where the guest fetches nodeup; with its SHA-256. Absent: the image already has it. */
  readonly binary?: { readonly url: string; readonly sha256: string };
  /** Base URL the guest POSTs `event/<node>/<phase>` and `receipt/<node>` to (no trailing slash). */
  readonly reportUrl?: string;
  /** Extra arguments for `nodeup apply` (e.g. `--only node-files`). */
  readonly applyArgs: readonly string[];
  /** Shell commands run before nodeup is fetched (e.g. `networkctl reload` for a private link). */
  readonly preCommands?: readonly string[];
}

export const bootConfigPath = '/etc/nodeup/boot.yaml';
export const nodeupBinaryPath = '/usr/local/bin/nodeup';
export const launchScriptPath = '/usr/local/lib/nodeup/launch-boot.sh';

/** Single-quotes a word for POSIX sh. Pure. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The shell script cloud-init runs once (runcmd). Pure. */
export function renderLaunchScript(i: UserDataInput): string {
  const report = i.reportUrl
    ? [
        `REPORT=${shQuote(i.reportUrl)}`,
        'post() { curl -fsS -m 20 --retry 3 -X POST -H "content-type: application/json" --data-binary "$2" "$REPORT/$1" >/dev/null || echo "nodeup-launch: cannot report $1" >&2; }',
      ]
    : ['post() { :; }'];
  const fetch = i.binary
    ? [
        `want=${shQuote(i.binary.sha256)}`,
        `have=$(sha256sum ${nodeupBinaryPath} 2>/dev/null | cut -d' ' -f1 || true)`,
        'if [ "$have" != "$want" ]; then',
        `  post "event/$NODE/fetching" "{\\"uptime\\":$(up)}"`,
        `  mkdir -p ${dirOf(nodeupBinaryPath)}`,
        `  curl -fsSL --retry 5 --retry-all-errors -o ${nodeupBinaryPath}.part ${shQuote(i.binary.url)} || fail "cannot download nodeup"`,
        `  echo "$want  ${nodeupBinaryPath}.part" | sha256sum -c --quiet - || fail "nodeup checksum mismatch"`,
        `  chmod 0755 ${nodeupBinaryPath}.part && mv ${nodeupBinaryPath}.part ${nodeupBinaryPath}`,
        'fi',
      ]
    : [`[ -x ${nodeupBinaryPath} ] || fail "the image has no ${nodeupBinaryPath}"`];
  const args = ['apply', '--config', bootConfigPath, '--log-format', 'json', ...i.applyArgs].map(shQuote).join(' ');
  return [
    '#!/bin/sh',
    '# managed by nodeup launch: runs once at first boot (cloud-init runcmd).',
    'set -u',
    `NODE=${shQuote(i.nodeName)}`,
    ...report,
    "up() { cut -d' ' -f1 /proc/uptime; }",
    'fail() { echo "nodeup-launch: $1" >&2; post "event/$NODE/failed" "{\\"uptime\\":$(up),\\"reason\\":\\"$1\\"}"; exit 1; }',
    `post "event/$NODE/booted" "{\\"uptime\\":$(up)}"`,
    ...(i.preCommands ?? []),
    ...fetch,
    'rm -f /var/lib/nodeup/status.json',
    `post "event/$NODE/started" "{\\"uptime\\":$(up)}"`,
    `${nodeupBinaryPath} ${args} 2>&1 | tee /var/log/nodeup-launch.log`,
    `if [ -s /var/lib/nodeup/status.json ]; then post "receipt/$NODE" @/var/lib/nodeup/status.json; else fail "nodeup wrote no receipt"; fi`,
    `${nodeupBinaryPath} install-unit --config ${bootConfigPath} --no-start --log-format json >/dev/null 2>&1 || echo "nodeup-launch: install-unit failed" >&2`,
    '',
  ].join('\n');
}

function dirOf(p: string): string {
  return p.slice(0, p.lastIndexOf('/')) || '/';
}

/** The whole cloud-config. Pure; stable key order. */
export function renderUserData(i: UserDataInput): string {
  const doc = {
    hostname: i.nodeName,
    preserve_hostname: false,
    write_files: [
      { path: bootConfigPath, permissions: '0600', owner: 'root:root', content: i.bootConfig },
      ...i.files.map((f) => ({ path: f.path, permissions: f.mode, owner: 'root:root', encoding: 'b64', content: Buffer.from(f.content).toString('base64') })),
      { path: launchScriptPath, permissions: '0755', owner: 'root:root', content: renderLaunchScript(i) },
    ],
    runcmd: [[launchScriptPath]],
  };
  return '#cloud-config\n# managed by nodeup launch\n' + yaml.dump(doc, { lineWidth: -1, noRefs: true });
}
