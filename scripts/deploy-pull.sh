#!/usr/bin/env bash
# Server side of a deploy: fast-forward to the pushed code, decrypt secrets,
# rebuild the base image and (re)start the stack.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/deploy-pull.sh
git pull --ff-only (retries after 2, 4, 8, 16 s; aborts on diverged history),
decrypts .env.enc when the age key is present (else keeps an existing .env,
and fails when there is neither), builds homelab-base, then
docker compose up --build -d.
USAGE
  exit 0
fi
cd "$(git rev-parse --show-toplevel)"
# shellcheck source=scripts/lib/retry.sh
source scripts/lib/retry.sh
key_file="${SOPS_AGE_KEY_FILE:-.sops/age-key.txt}"

branch="$(git rev-parse --abbrev-ref HEAD)"
with_retries "git fetch" git fetch -q origin "$branch"
if ! git merge-base --is-ancestor HEAD FETCH_HEAD; then
  if git merge-base --is-ancestor FETCH_HEAD HEAD; then
    echo "local $branch is ahead of origin; nothing to pull"
  else
    echo "deploy-pull.sh: local and origin/$branch have diverged; resolve it by hand (nothing was changed)" >&2
    exit 1
  fi
else
  git merge -q --ff-only FETCH_HEAD
  echo "updated to $(git rev-parse --short HEAD)"
fi

if [[ -f "$key_file" ]]; then
  scripts/secrets-decrypt.sh
elif [[ -f .env ]]; then
  echo "no age key at $key_file: keeping the existing .env"
else
  echo "deploy-pull.sh: no .env and no age key at $key_file to decrypt .env.enc" >&2
  exit 1
fi

scripts/build-base.sh
docker compose up --build -d
echo "deployed $(git rev-parse --short HEAD)"
