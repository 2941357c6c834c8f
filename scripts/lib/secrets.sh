# shellcheck shell=bash
# Shared by scripts/secrets-*.sh: `sops` when it is installed, else the workspace's
# sops-dotenv (same file format, either opens the other's files).
# SOPS_DOTENV may name a prebuilt sops-dotenv binary.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
key_file="${SOPS_AGE_KEY_FILE:-.sops/age-key.txt}"

sops_dotenv() {
  if [[ -n "${SOPS_DOTENV:-}" ]]; then
    "$SOPS_DOTENV" "$@"
  elif command -v cargo >/dev/null 2>&1; then
    cargo run --quiet --manifest-path "$repo_root/Cargo.toml" -p sops-dotenv -- "$@"
  else
    echo "neither sops nor cargo is installed: install sops, or Rust to build sops-dotenv" >&2
    return 1
  fi
}

use_sops() {
  [[ -z "${SOPS_DOTENV:-}" ]] && command -v sops >/dev/null 2>&1
}

# encrypt_env IN OUT
encrypt_env() {
  if use_sops; then
    local tmp
    tmp="$(mktemp "$(dirname "$2")/.env.enc.XXXXXX")"
    if sops --encrypt --input-type dotenv --output-type dotenv "$1" >"$tmp"; then
      mv "$tmp" "$2"
    else
      rm -f "$tmp"
      return 1
    fi
  else
    sops_dotenv encrypt "$1" --output "$2" --config .sops.yaml
  fi
}

# decrypt_env IN OUT — OUT is replaced only when decryption succeeded.
decrypt_env() {
  if [[ ! -f "$key_file" ]]; then
    echo "no age key at $key_file (copy it from your password manager, or run scripts/secrets-init.sh)" >&2
    return 1
  fi
  if use_sops; then
    local tmp
    tmp="$(mktemp "$(dirname "$2")/.env.XXXXXX")"
    chmod 600 "$tmp"
    if SOPS_AGE_KEY_FILE="$key_file" sops --decrypt --input-type dotenv --output-type dotenv "$1" >"$tmp"; then
      mv "$tmp" "$2"
    else
      rm -f "$tmp"
      return 1
    fi
  else
    sops_dotenv decrypt "$1" --output "$2" --key "$key_file"
  fi
}
