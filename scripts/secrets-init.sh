#!/usr/bin/env bash
# Creates this machine's age key (.sops/age-key.txt, never committed), writes its
# public key to .sops/age-key.pub and makes it the recipient in .sops.yaml.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/secrets-init.sh
Creates .sops/age-key.txt (refuses to overwrite one), .sops/age-key.pub and
.sops.yaml. Back the key file up in your password manager: without it,
.env.enc cannot be decrypted. Then run scripts/secrets-encrypt.sh.
USAGE
  exit 0
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/secrets.sh
source scripts/lib/secrets.sh

if [[ -e "$key_file" ]]; then
  echo "secrets-init.sh: $key_file already exists; not replacing a key (that would lock you out of .env.enc)" >&2
  exit 1
fi
mkdir -p "$(dirname "$key_file")"
chmod 700 "$(dirname "$key_file")"
if command -v age-keygen >/dev/null 2>&1 && [[ -z "${SOPS_DOTENV:-}" ]]; then
  age-keygen -o "$key_file" 2>/dev/null
  chmod 600 "$key_file"
  public="$(age-keygen -y "$key_file")"
else
  public="$(sops_dotenv keygen "$key_file")"
fi
echo "$public" >"$(dirname "$key_file")/age-key.pub"
cat >.sops.yaml <<YAML
# SOPS rules: .env and .env.enc are encrypted for this age recipient.
# Its private key is .sops/age-key.txt (git-ignored): keep a copy in a password manager.
creation_rules:
  - path_regex: \.env(\.enc)?$
    age: $public
YAML
echo "created $key_file (back it up!) and .sops.yaml for $public"
