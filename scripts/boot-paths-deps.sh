#!/usr/bin/env bash
# Installs what the boot-path integration tests need (tests/integration/{userdata,ssh,packer-validate}.test.ts):
# bash/curl/xz/coreutils for the user-data script, OpenSSH's server and client and util-linux
# (flock) for SSH reprovisioning, packer (1.6.6 from Debian bookworm, HCL2, qemu/amazon/googlecompute
# builders built in) for the templates, and qemu for a real `packer build` of the qemu template.
# Idempotent: installs only what is missing; never starts a service (sshd is started by the tests).
set -euo pipefail
PACKAGES=(bash curl xz-utils coreutils util-linux openssh-server openssh-client packer shellcheck qemu-system-x86 qemu-utils)
log() { printf 'boot-paths-deps: %s\n' "$*" >&2; }
if [ "$(id -u)" -ne 0 ]; then log "must run as root (apt-get install)"; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then log "all ${#PACKAGES[@]} packages present"; exit 0; fi
log "installing: ${missing[*]}"
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 0755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
log "done"
