#!/usr/bin/env bash
# Builds kube-config-check (scripts/kube-config-check) once per Kubernetes release it checks against:
# the upstream k8s.io/kubelet, k8s.io/kube-proxy and k8s.io/api types of that release, fetched as Go
# modules. The API types do not change within a minor, so one patch per minor is enough: the one the
# Go module mirror serves (keep this list and the test's in step). Idempotent; cached under
# ~/.cache/nodeup/kube-config-check/<staging version>/.
# Used by tests/integration/kubelet-config.test.ts. Usage: setup-kube-config-check.sh [v0.35.1 ...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${NODEUP_CACHE:-$HOME/.cache/nodeup}/kube-config-check"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(v0.33.13 v0.34.2 v0.35.1)
command -v go >/dev/null || { echo "setup-kube-config-check: go is not on PATH" >&2; exit 1; }
for staging in "${versions[@]}"; do
  v="$staging"
  out="$cache/$v/kube-config-check"
  if [ -x "$out" ]; then echo "kube-config-check $v: cached at $out"; continue; fi
  echo "kube-config-check $v: building against k8s.io/kubelet $staging"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp "$here/kube-config-check/main.go" "$work/"
  ( cd "$work"
    cat > go.mod <<MOD
module nodeup.dev/kube-config-check

go 1.24
MOD
    go get "k8s.io/kubelet@$staging" "k8s.io/kube-proxy@$staging" "k8s.io/api@$staging" sigs.k8s.io/yaml >/dev/null
    go mod tidy >/dev/null
    mkdir -p "$(dirname "$out")"
    nice -n 10 go build -trimpath -o "$out.tmp" .
    mv "$out.tmp" "$out" )
  rm -rf "$work"
  trap - EXIT
  echo "kube-config-check $v: built $out"
done
