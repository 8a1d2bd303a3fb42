#!/usr/bin/env bash
# Source this file: it makes Node 24 (the runtime the nodeup binary embeds) the `node` and `npm`
# on PATH, installing it from the npm registry's `node-linux-<arch>` package into a cache outside
# the clone the first time. The system Node (20) is too old for execa, undici and Node 24 single executables.
NODEUP_NODE_VERSION="${NODEUP_NODE_VERSION:-24.21.0}"
NODEUP_CACHE="${NODEUP_CACHE:-$HOME/.cache/nodeup}"
__nodeup_arch() { case "$(uname -m)" in x86_64) echo x64 ;; aarch64|arm64) echo arm64 ;; *) echo "unsupported-$(uname -m)" ;; esac; }
__nodeup_node_dir="$NODEUP_CACHE/toolchain/node-v$NODEUP_NODE_VERSION-linux-$(__nodeup_arch)"
if [ ! -x "$__nodeup_node_dir/bin/node" ]; then
  echo "node-env: installing Node $NODEUP_NODE_VERSION into $__nodeup_node_dir" >&2
  __tmp="$(mktemp -d)"
  ( cd "$__tmp" && npm pack --silent "node-linux-$(__nodeup_arch)@$NODEUP_NODE_VERSION" >/dev/null && tar -xzf ./*.tgz ) || { echo "node-env: could not fetch node-linux-$(__nodeup_arch)@$NODEUP_NODE_VERSION" >&2; return 1 2>/dev/null || exit 1; }
  mkdir -p "$__nodeup_node_dir/bin"
  cp "$__tmp/package/bin/node" "$__nodeup_node_dir/bin/node"
  chmod 0755 "$__nodeup_node_dir/bin/node"
  rm -rf "$__tmp"
fi
# npm itself is the system npm (pure JS), run by Node 24.
export PATH="$__nodeup_node_dir/bin:$PATH"
export NODEUP_NODE_BIN="$__nodeup_node_dir/bin/node"
