#!/usr/bin/env bash
# Builds the shared build base image homelab-base:latest (toolchain, cargo-chef,
# all workspace dependencies). Rebuild after changing Cargo.toml or Cargo.lock.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/build-base.sh [extra docker build arguments]
Builds base/Dockerfile from the repository root and tags it homelab-base:latest.
Needs a Docker engine.
USAGE
  exit 0
fi
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
  echo "build-base.sh: no Docker engine reachable (docker info failed)" >&2
  exit 1
fi
docker build --file base/Dockerfile --target base --tag homelab-base:latest "$@" .
echo "built homelab-base:latest"
