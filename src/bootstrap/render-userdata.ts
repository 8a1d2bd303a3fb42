// Cloud-init user-data: a short bash script that installs the nodeup binary (verified against a
// pinned SHA-256 of the decompressed binary, from a list of mirrors, retrying forever with
// backoff), writes the boot config (which carries the full node config's hash) and runs
// `nodeup install-unit`, which installs nodeup.service and starts it without waiting. Pure.
//
// Why a plain `#!/bin/bash` part and not `#cloud-config` (write_files + runcmd): the very same bytes
// run under cloud-init (as an x-shellscript part), under `bash` in our tests, over SSH and from any
// launcher that can run a script — one payload for every boot path, tested as shipped. A
// cloud-config would nest the boot config's YAML inside YAML and still need a script for the
// download loop. cloud-init unpacks gzip user-data by itself, so `--gzip` output stays a single part.
// `nodeup launch` hands its machines these same bytes, written by a small cloud-config wrapper that
// adds only what a lab launcher needs (progress reports, embedded store files, a private link):
// see src/orchestrator/render-user-data.ts.
import * as yaml from 'js-yaml';
import type { BootConfig } from '../model/config.ts';
import { AgentError } from '../engine/errors.ts';

/** The architectures a nodeup binary is built for. */
export type BinaryArch = 'amd64' | 'arm64';

export const defaultInstallPath = '/usr/local/bin/nodeup';
export const defaultBootConfigPath = '/etc/nodeup/boot.yaml';
/** EC2's limit on user-data (before base64); GCE and others allow more. */
export const userDataLimitBytes = 16_384;

export interface UserDataInput {
  readonly bootConfig: BootConfig;
  /**
   * Base URLs tried in order; the script fetches `<mirror>/nodeup-linux-<arch>.xz`, or the plain
   * `<mirror>/nodeup-linux-<arch>` when the mirror has no .xz (404) or the machine has no xz.
   */
  readonly mirrors: readonly string[];
  /** SHA-256 (hex) of the decompressed binary per architecture; an architecture left out is refused at boot. */
  readonly sha256: Partial<Readonly<Record<BinaryArch, string>>>;
  /** The nodeup version the hashes belong to (shown in logs only). */
  readonly version?: string;
  readonly installPath?: string;
  readonly bootConfigPath?: string;
}

const heredocEnd = 'NODEUP_BOOT_CONFIG_EOF';
const archs: readonly BinaryArch[] = ['amd64', 'arm64'];

/** The boot config as the node reads it: stable key order, no line folding. Pure. */
export function renderBootConfigYaml(boot: BootConfig): string {
  return `# nodeup boot config: written by user-data, read by nodeup.service. Managed by nodeup.\n${yaml.dump(boot, { lineWidth: -1, noRefs: true })}`;
}

/** Refuses anything that looks like a secret: user-data is readable by anyone with describe rights. */
export function assertNoSecrets(text: string, source: string): void {
  const problems: string[] = [];
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text)) problems.push('a PEM private key');
  if (/(secretAccessKey|sessionToken|password|bootstrapToken|privateKey)\s*:/i.test(text)) problems.push('a credential field');
  if (/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/.test(text)) problems.push('a bootstrap token (<id>.<secret>)');
  if (problems.length > 0) {
    throw new AgentError('CONFIG_INVALID', `${source}: user-data must not carry secrets, found ${problems.join(' and ')}; keep secrets in the state store`, {
      details: { file: source, found: problems },
    });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function checkMirror(url: string, i: number): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AgentError('CONFIG_INVALID', `mirrors[${i}]: not a URL: ${url}`, { details: { field: `mirrors[${i}]` } });
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:' && u.protocol !== 'file:') {
    throw new AgentError('CONFIG_INVALID', `mirrors[${i}]: expected an http(s):// URL (or file:// for a folder on the machine), got ${u.protocol}`, { details: { field: `mirrors[${i}]` } });
  }
  if (u.username || u.password || u.search) {
    throw new AgentError('CONFIG_INVALID', `mirrors[${i}]: credentials or query strings in a mirror URL would be readable in user-data; use a public mirror (the binary's hash is pinned)`, {
      details: { field: `mirrors[${i}]` },
    });
  }
  return url.replace(/\/+$/, '');
}

/** The bootstrap script. Pure; throws AgentError on input it must not render. */
export function renderBootstrapScript(input: UserDataInput): string {
  if (input.mirrors.length === 0) {
    throw new AgentError('CONFIG_INVALID', 'mirrors: at least one mirror URL is needed (where nodeup-linux-<arch>.xz is served)', { details: { field: 'mirrors' } });
  }
  const mirrors = input.mirrors.map(checkMirror);
  const given = archs.filter((a) => input.sha256[a] !== undefined);
  if (given.length === 0) {
    throw new AgentError('CONFIG_INVALID', 'sha256: no binary hash given; pass --sha256-amd64/--sha256-arm64 or --dist DIR with nodeup-linux-<arch>.sha256', { details: { field: 'sha256' } });
  }
  for (const a of given) {
    if (!/^[0-9a-f]{64}$/.test(input.sha256[a] ?? '')) {
      throw new AgentError('CONFIG_INVALID', `sha256.${a}: expected 64 lowercase hex characters`, { details: { field: `sha256.${a}` } });
    }
  }
  const installPath = input.installPath ?? defaultInstallPath;
  const configPath = input.bootConfigPath ?? defaultBootConfigPath;
  for (const [field, p] of [['installPath', installPath], ['bootConfigPath', configPath]] as const) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(p)) throw new AgentError('CONFIG_INVALID', `${field}: expected an absolute path of plain characters, got ${p}`, { details: { field } });
  }
  const bootYaml = renderBootConfigYaml(input.bootConfig);
  assertNoSecrets(bootYaml, 'boot config');
  if (bootYaml.split('\n').includes(heredocEnd)) throw new AgentError('CONFIG_INVALID', `boot config contains the line ${heredocEnd}`);
  const b = input.bootConfig;

  return `#!/bin/bash
# nodeup user-data for ${b.clusterName}/${b.instanceGroup}: installs the nodeup binary (hash-pinned),
# writes the boot config and installs nodeup.service. Generated by \`nodeup userdata\`${input.version ? ` (nodeup ${input.version})` : ''}; edits are lost.
# NODEUP_* environment variables override the defaults below (used by tests and custom images).
set -o errexit -o nounset -o pipefail

NODEUP_MIRRORS=(
${mirrors.map((m) => `  ${shellQuote(m)}`).join('\n')}
)
NODEUP_SHA256_AMD64=${shellQuote(input.sha256.amd64 ?? '')}
NODEUP_SHA256_ARM64=${shellQuote(input.sha256.arm64 ?? '')}
NODEUP_CONFIG_HASH=${shellQuote(b.nodeConfigHash)}
install_path="\${NODEUP_INSTALL_PATH:-${installPath}}"
config_path="\${NODEUP_CONFIG_PATH:-${configPath}}"
delay="\${NODEUP_RETRY_BASE_SECONDS:-5}"
max_delay="\${NODEUP_RETRY_MAX_SECONDS:-60}"

log() { echo "== nodeup-userdata $(date -u +%H:%M:%S) $* ==" >&2; }

case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 want="$NODEUP_SHA256_AMD64" ;;
  aarch64 | arm64) arch=arm64 want="$NODEUP_SHA256_ARM64" ;;
  *) log "unsupported architecture $(uname -m)"; exit 1 ;;
esac
if [ -z "$want" ]; then log "this user-data has no nodeup binary for $arch"; exit 1; fi

if [ -z "\${NODEUP_SKIP_HOST_PREP:-}" ]; then
  # Kernels >= 4.19.86 receive slowly with small TCP buffers (kOps #10206): raise them first.
  sysctl -q -w net.core.rmem_max=16777216 net.core.wmem_max=16777216 \\
    'net.ipv4.tcp_rmem=4096 87380 16777216' 'net.ipv4.tcp_wmem=4096 87380 16777216' || true
  # A sealed image has an empty machine-id; make sure this machine has its own.
  if [ ! -s /etc/machine-id ] && command -v systemd-machine-id-setup >/dev/null; then systemd-machine-id-setup; fi
fi

sha256_of() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

# fetch URL FILE: 0 downloaded; 2 not there (HTTP 404, or no such file:// file); 1 any other failure.
fetch() {
  local code rc=0
  code="$(curl -fsSL --connect-timeout 20 --retry "\${NODEUP_CURL_RETRY:-3}" --retry-delay 5 -w '%{http_code}' -o "$2" "$1")" || rc=$?
  if [ "$rc" -eq 0 ]; then return 0; fi
  rm -f "$2"
  if [ "$code" = 404 ] || [ "$rc" -eq 37 ]; then return 2; fi
  return 1
}

# download MIRROR: fetch (the .xz, else the plain binary when the mirror has no .xz), unpack and
# verify the binary; installs it atomically or returns 1.
download() {
  local dir tmp url got rc=2
  dir="$(dirname "$install_path")"
  mkdir -p "$dir"
  tmp="$(mktemp "$dir/.nodeup-download.XXXXXX")"
  if command -v xz >/dev/null; then
    url="$1/nodeup-linux-$arch.xz"
    log "downloading $url"
    rc=0
    fetch "$url" "$tmp.xz" || rc=$?
    if [ "$rc" -eq 0 ]; then
      if ! xz -dc "$tmp.xz" >"$tmp"; then log "not a valid xz file: $url"; rm -f "$tmp" "$tmp.xz"; return 1; fi
      rm -f "$tmp.xz"
    elif [ "$rc" -eq 2 ]; then
      log "no $url there; trying the uncompressed binary"
    fi
  else
    log "no xz on this image: fetching the uncompressed binary"
  fi
  if [ "$rc" -eq 2 ]; then
    url="$1/nodeup-linux-$arch"
    log "downloading $url"
    rc=0
    fetch "$url" "$tmp" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then log "download failed: $url"; rm -f "$tmp"; return 1; fi
  got="$(sha256_of "$tmp")"
  if [ "$got" != "$want" ]; then
    log "sha256 mismatch from $url: got $got, want $want; refusing it"; rm -f "$tmp"; return 1
  fi
  chmod 0755 "$tmp"
  mv -f "$tmp" "$install_path"
}

if [ "$(sha256_of "$install_path")" = "$want" ]; then
  log "nodeup already installed at $install_path with the pinned hash"
else
  while :; do
    for mirror in "\${NODEUP_MIRRORS[@]}"; do
      if download "$mirror"; then break 2; fi
    done
    log "no mirror gave a valid binary; retrying in \${delay}s"
    sleep "$delay"
    delay=$((delay * 2 > max_delay ? max_delay : delay * 2))
  done
  log "installed $install_path"
fi

mkdir -p "$(dirname "$config_path")"
conf_tmp="$(mktemp "$(dirname "$config_path")/.boot.yaml.XXXXXX")"
cat >"$conf_tmp" <<'${heredocEnd}'
${bootYaml.trimEnd()}
${heredocEnd}
chmod 0644 "$conf_tmp"
mv -f "$conf_tmp" "$config_path"
log "wrote $config_path (node config $NODEUP_CONFIG_HASH)"

exec "$install_path" install-unit --config "$config_path" --binary "$install_path"
`;
}

/** Refuses user-data over EC2's limit (pass the bytes as handed to the cloud, gzip or not). Pure. */
export function assertUserDataSize(bytes: number): void {
  if (bytes > userDataLimitBytes) {
    throw new AgentError('CONFIG_INVALID', `user-data is ${bytes} bytes, over the ${userDataLimitBytes}-byte limit of EC2; use fewer mirrors or --gzip`, {
      details: { bytes, limit: userDataLimitBytes },
    });
  }
}
