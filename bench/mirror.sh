#!/usr/bin/env bash
# Benchmark: size and time of staging a mirror (`nodeup mirror`) for one Kubernetes version, from
# a loopback source that holds the release assets built here (scripts/vm/assets.sh: kubelet,
# kubectl, containerd, runc, CNI plugins, crictl, etcd; amd64), side by side with `cp -r` of the
# same files as the floor. Two architectures are asked for; the built assets exist for amd64 only,
# so the worker NodeConfig's overrides (one URL and hash for every architecture, as overrides are)
# put the same bytes at both architectures' paths: the second costs links, not downloads.
#   bench/mirror.sh [ROUNDS]     (needs scripts/vm/setup.sh's assets; prints the figures)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/node-env.sh >/dev/null
assets="${NODEUP_CACHE:-$HOME/.cache/nodeup}/vm/assets-current"
[ -f "$assets/assets.env" ] || { echo "bench/mirror.sh: no release assets at $assets: run bash scripts/vm/setup.sh" >&2; exit 1; }
# shellcheck disable=SC1091
source "$assets/assets.env"
rounds="${1:-3}"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$assets" >/dev/null 2>&1 &
server=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/assets.env" 2>/dev/null && break; sleep 0.1; done

override() { # NAME VERSION SHA256 FILE
  printf '      %s:\n        version: "%s"\n        urls: ["http://127.0.0.1:%s/%s/%s/linux-amd64/%s"]\n        sha256: %s\n' "$1" "$2" "$port" "$1" "$2" "$4" "$3"
}
file_of() { basename "$(find "$assets/$1/$2/linux-amd64" -type f | head -1)"; }
{
  printf 'apiVersion: nodeup.dev/v1alpha1\nkind: NodeConfig\nmetadata: {cluster: bench, instanceGroup: nodes}\nspec:\n'
  printf '  role: worker\n  kubernetesVersion: v%s\n  apiServerEndpoint: https://10.0.0.10:6443\n  assets:\n    overrides:\n' "$KUBELET_VERSION"
  override kubelet "$KUBELET_VERSION" "$KUBELET_SHA256" "$(file_of kubelet "$KUBELET_VERSION")"
  override kubectl "$KUBECTL_VERSION" "$KUBECTL_SHA256" "$(file_of kubectl "$KUBECTL_VERSION")"
  override containerd "$CONTAINERD_VERSION" "$CONTAINERD_SHA256" "$(file_of containerd "$CONTAINERD_VERSION")"
  override runc "$RUNC_VERSION" "$RUNC_SHA256" "$(file_of runc "$RUNC_VERSION")"
  override cni-plugins "$CNI_PLUGINS_VERSION" "$CNI_PLUGINS_SHA256" "$(file_of cni-plugins "$CNI_PLUGINS_VERSION")"
  override crictl "$CRICTL_VERSION" "$CRICTL_SHA256" "$(file_of crictl "$CRICTL_VERSION")"
} >"$work/node.yaml"

ms() { date +%s%3N; }
echo "round  nodeup-mirror-cold  second-run  floor(cp -rL + sha256sum)  cold/floor"
for r in $(seq "$rounds"); do
  rm -rf "$work/m" "$work/cp"
  t0=$(ms); node src/app/main.ts mirror --node-config "$work/node.yaml" --dir "$work/m" --arch amd64,arm64 --no-images --log-level warn >"$work/out" ; t1=$(ms)
  node src/app/main.ts mirror --node-config "$work/node.yaml" --dir "$work/m" --arch amd64,arm64 --no-images --log-level warn >/dev/null; t2=$(ms)
  cp -rL "$assets" "$work/cp"; find "$work/cp" -type f -exec sha256sum {} + >/dev/null; t3=$(ms)
  printf "%5s  %16.2fs  %9.2fs  %24.2fs  %9.1fx\n" "$r" "$(echo "($t1-$t0)/1000" | bc -l)" "$(echo "($t2-$t1)/1000" | bc -l)" "$(echo "($t3-$t2)/1000" | bc -l)" "$(echo "($t1-$t0)/($t3-$t2)" | bc -l)"
done
grep '^files:' "$work/out"
du -sh --apparent-size "$work/m" | awk '{print "mirror on disk (two architectures, the second linked): " $1}'
