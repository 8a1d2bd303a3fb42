#!/usr/bin/env bash
# The main job on the embedded default, on a fresh machine:
#   1. set up Node 24 and the dependencies (scripts/setup.sh, no test fixtures);
#   2. write the example cluster: a file:// state store with a control-plane group and a worker
#      group, and a boot config for each (`nodeup example`);
#   3. `nodeup plan` a worker and a control plane on scratch roots (Debian 12 and Rocky 9): every
#      package, download, file, unit and certificate apply would touch;
#   4. `nodeup apply` the control plane (cluster PKI in the state store, certificates, static pods)
#      and then the worker into their scratch roots, twice each: the first run converges what needs no
#      internet download, the second reports 0 changes. The release assets (kubelet, containerd...)
#      come from the official sites, which these machines cannot reach: point spec.assets.mirrors
#      (or the boot config's assetMirrors) at a mirror to apply everything.
# Nothing outside ~/.cache/nodeup/demo is touched. Usage: bash scripts/demo.sh
#
# With --vm [--keep]: the same job in real guests (tests/vm/demo.ts): one control plane and one
# worker boot in QEMU through cloud-init, `kubectl get nodes -o wide` is printed and a request goes
# through a Service, then the guests are deleted (--keep: kept until Ctrl-C). It first builds the VM
# fixtures (scripts/vm/setup.sh: cached under ~/.cache/nodeup; cold, the Kubernetes parts are built
# from source, about 40 minutes), then takes about 25 minutes under TCG on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --no-fixtures
if [ "${1:-}" = --vm ]; then
  shift
  bash scripts/vm/setup.sh
  # shellcheck disable=SC1091
  source scripts/node-env.sh
  exec node tests/vm/demo.ts "$@"
fi
# shellcheck disable=SC1091
source scripts/node-env.sh
DEMO="${NODEUP_CACHE:-$HOME/.cache/nodeup}/demo"
rm -rf "$DEMO" && mkdir -p "$DEMO"
nodeup() { node src/app/main.ts "$@"; }
say() { printf '\n=== %s\n' "$*"; }

say "nodeup example: state store and boot configs in $DEMO"
nodeup example --dir "$DEMO"
for r in worker:debian-12 control-plane:rocky-9; do
  mkdir -p "$DEMO/root-${r%%:*}" && cp -r "tests/fixtures/roots/${r#*:}/." "$DEMO/root-${r%%:*}/"
  printf 'demo-%s\n' "${r%%:*}" >"$DEMO/root-${r%%:*}/etc/hostname"
done

# Packages are queried with dpkg/rpm inside the root: a scratch root holds only os-release, so the
# demo leaves the packages component out (tests/integration/packages-*.test.ts run it on real roots).
say "nodeup plan: a control plane on Rocky 9 (nothing is changed)"
nodeup plan --config "$DEMO/boot-control-plane.yaml" --root "$DEMO/root-control-plane" --skip packages --log-format pretty

offline_cp="node-files,prereqs,control-plane"
say "nodeup apply --only $offline_cp: the first control plane creates the cluster PKI in the state store"
nodeup apply --config "$DEMO/boot-control-plane.yaml" --root "$DEMO/root-control-plane" --only "$offline_cp" --log-format pretty
say "nodeup apply again: a converged node reports 0 changes"
nodeup apply --config "$DEMO/boot-control-plane.yaml" --root "$DEMO/root-control-plane" --only "$offline_cp" --log-format pretty

say "nodeup plan: a worker on Debian 12 (nothing is changed; its CA and bootstrap token now exist)"
nodeup plan --config "$DEMO/boot-nodes.yaml" --root "$DEMO/root-worker" --skip packages --log-format pretty
offline="node-files,prereqs,kube-proxy"
say "nodeup apply --only $offline: converge the worker's scratch root"
nodeup apply --config "$DEMO/boot-nodes.yaml" --root "$DEMO/root-worker" --only "$offline" --log-format pretty
say "nodeup apply again: 0 changes"
nodeup apply --config "$DEMO/boot-nodes.yaml" --root "$DEMO/root-worker" --only "$offline" --log-format pretty
say "nodeup status: the receipt of the last run"
nodeup status --root "$DEMO/root-worker"
find "$DEMO/state" -type f | sed "s|$DEMO/state/|state store: |" | sort
say "done: the scratch roots are under $DEMO; the full apply also downloads kubelet, containerd, runc, CNI and crictl (verified by SHA-256) from the official sites or your mirrors"
