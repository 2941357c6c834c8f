#!/usr/bin/env bash
# Decrypts .env.enc into .env with the age key in .sops/age-key.txt (or $SOPS_AGE_KEY_FILE).
# On any failure .env is left exactly as it was.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  echo "usage: scripts/secrets-decrypt.sh   (.env.enc → .env; uses sops when installed, else sops-dotenv)"
  exit 0
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/secrets.sh
source scripts/lib/secrets.sh

[[ -f .env.enc ]] || { echo "secrets-decrypt.sh: no .env.enc to decrypt" >&2; exit 1; }
if ! decrypt_env .env.enc .env; then
  echo "secrets-decrypt.sh: decryption failed; .env was not changed" >&2
  exit 1
fi
echo "decrypted .env.enc → .env"
