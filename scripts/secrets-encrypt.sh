#!/usr/bin/env bash
# Encrypts .env into .env.enc (SOPS dotenv format, age) for the recipients in .sops.yaml.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  echo "usage: scripts/secrets-encrypt.sh   (.env → .env.enc; uses sops when installed, else sops-dotenv)"
  exit 0
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/secrets.sh
source scripts/lib/secrets.sh

[[ -f .env ]] || { echo "secrets-encrypt.sh: no .env to encrypt" >&2; exit 1; }
[[ -f .sops.yaml ]] || { echo "secrets-encrypt.sh: no .sops.yaml (run scripts/secrets-init.sh)" >&2; exit 1; }
encrypt_env .env .env.enc
echo "encrypted .env → .env.enc"
