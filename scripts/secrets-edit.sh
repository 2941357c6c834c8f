#!/usr/bin/env bash
# Edits the encrypted secrets: decrypts .env.enc to a private temp file, opens
# $EDITOR, re-encrypts when something changed, and removes the plain copy.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  echo "usage: scripts/secrets-edit.sh   (opens \$EDITOR, default vi, on the decrypted .env.enc)"
  exit 0
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/secrets.sh
source scripts/lib/secrets.sh

[[ -f .env.enc ]] || { echo "secrets-edit.sh: no .env.enc (run scripts/secrets-encrypt.sh first)" >&2; exit 1; }
if use_sops; then
  SOPS_AGE_KEY_FILE="$key_file" exec sops --input-type dotenv --output-type dotenv .env.enc
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/homelab-secrets.XXXXXX")"
chmod 700 "$work"
trap 'rm -rf "$work"' EXIT
decrypt_env .env.enc "$work/.env"
cp "$work/.env" "$work/.env.before"
${EDITOR:-vi} "$work/.env"
if cmp -s "$work/.env" "$work/.env.before"; then
  echo "no change; .env.enc left as it was"
  exit 0
fi
encrypt_env "$work/.env" .env.enc
echo "re-encrypted .env.enc"
