#!/usr/bin/env bash
# VM figures: boots one guest through `nodeup launch --provider qemu` (base image, real nodeup
# binary, a worker config with only files and a unit) and prints
#   - the accelerator QEMU used (kvm or tcg),
#   - seconds from guest start (qemu started) to nodeup start (host clock; guest uptime beside it),
#   - nodeup's wall time (from its receipt),
#   - seconds from guest start to the receipt (node converged) at the orchestrator.
# Needs: bash scripts/vm/setup.sh. Usage: bash bench/vm.sh [runs]   (default 1 run)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/node-env.sh >/dev/null
RUNS="${1:-1}"
CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}"
if [ ! -f "$CACHE/vm/base-current/.ok" ] || [ ! -x dist/nodeup-linux-amd64 ]; then
  echo "missing fixtures: run bash scripts/vm/setup.sh" >&2
  exit 1
fi
WORK="$(mktemp -d /tmp/nodeup-bench-vm-XXXXXX)"
trap 'node src/app/main.ts launch --state-dir "$WORK/instances" --delete bench-1 >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
cat >"$WORK/node.yaml" <<'YAML'
apiVersion: nodeup.dev/v1alpha1
kind: NodeConfig
metadata: {cluster: bench, instanceGroup: bench}
spec:
  role: worker
  apiServerEndpoint: https://10.0.2.2:6443
  files:
    - {path: /etc/nodeup-bench/hello.txt, content: "hello\n", mode: "0644"}
  units:
    - name: nodeup-bench.service
      content: |
        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/bin/true
        [Install]
        WantedBy=multi-user.target
YAML
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); guest: 2 vCPUs, 2048 MiB; base image $(readlink -f "$CACHE/vm/base-current")"
for i in $(seq 1 "$RUNS"); do
  t0=$(date +%s.%N)
  node src/app/main.ts launch --node-config "$WORK/node.yaml" --name bench-1 --binary dist/nodeup-linux-amd64 \
    --state-dir "$WORK/instances" --only node-files --timeout 1800 --log-format json >"$WORK/out.txt" 2>"$WORK/err.txt" || {
    echo "run $i: launch failed"; tail -20 "$WORK/out.txt"; tail -40 "$WORK/instances/bench-1/serial.log" 2>/dev/null; exit 1; }
  t1=$(date +%s.%N)
  node -e '
    const t = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = (ms) => (ms / 1000).toFixed(1);
    console.log(`run ${process.argv[2]}: accelerator ${t.accel}; guest start -> nodeup start ${s(t.startedAtMs - t.launchedAtMs)} s (guest uptime ${t.startedUptimeS} s); nodeup wall ${s(t.nodeupMs)} s; guest start -> receipt (converged) ${s(t.receiptAtMs - t.launchedAtMs)} s; whole launch command ${(Number(process.argv[3])).toFixed(1)} s`);
  ' "$WORK/instances/bench-1/timings.json" "$i" "$(echo "$t1 - $t0" | bc)"
  node src/app/main.ts launch --state-dir "$WORK/instances" --delete bench-1 --log-level warn >/dev/null
done
