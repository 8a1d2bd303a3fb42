#!/usr/bin/env bash
# Benchmark: time to add an etcd learner and promote it on loopback, through nodeup's membership
# code, on Debian's etcd 3.4 and etcd 3.6 (3 voters, 10,000 keys). Prints the figures.
# Usage: bench/etcd-learner.sh [ROUNDS] [KEYS]   (needs scripts/setup-etcd.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-etcd.sh >/dev/null 2>&1 || bash scripts/setup-etcd.sh
# shellcheck disable=SC1091
source scripts/node-env.sh >/dev/null
node bench/etcd-learner.ts "${1:-5}" "${2:-10000}"
