#!/usr/bin/env bash
# Gives every broker identity in .env a random password: MQTT_PASSWORD and each
# MQTT_PASSWORD_<IDENTITY> that is empty or still a change-me placeholder. Missing
# identities of .env.example are added. Run it once after copying .env.example; the
# broker writes its password and ACL files from .env at its next start.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  echo "usage: scripts/mqtt-users.sh [ENV_FILE]   (default .env; placeholders → random passwords)"
  exit 0
fi
cd "$(dirname "$0")/.."
env_file="${1:-.env}"
[[ -f "$env_file" ]] || { echo "mqtt-users.sh: no $env_file (copy .env.example first)" >&2; exit 1; }

random_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Identities .env.example knows but this .env lacks (a service added since).
while IFS= read -r line; do
  key="${line%%=*}"
  grep -q "^$key=" "$env_file" || echo "$key=" >>"$env_file"
done < <(grep -E '^MQTT_PASSWORD_[A-Z0-9_]+=' .env.example)

changed=()
tmp="$(mktemp "$env_file.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" =~ ^(MQTT_PASSWORD(_[A-Z0-9_]+)?)=(change-me.*)?$ ]]; then
    key="${BASH_REMATCH[1]}"
    line="$key=$(random_password)"
    changed+=("$key")
  fi
  printf '%s\n' "$line"
done <"$env_file" >"$tmp"
chmod --reference="$env_file" "$tmp" 2>/dev/null || chmod 600 "$tmp"
mv "$tmp" "$env_file"
trap - EXIT
if ((${#changed[@]})); then
  echo "new random passwords for: ${changed[*]}"
  echo "restart the broker and the services (docker compose up -d) to use them"
else
  echo "every broker identity in $env_file already has its own password"
fi
