#!/usr/bin/env bash
# Installs a git pre-commit hook that refuses to commit secrets: any .env* but
# .env.example and .env.enc, any *.env, anything under .sops/ or credentials/, and a
# file holding an age private key or a Home Assistant long-lived access token.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/install-hooks.sh [--force]
Writes the pre-commit hook of the current git repository. An existing hook that
this script did not write is kept unless --force is given.
USAGE
  exit 0
fi
force="${1:-}"
hooks_dir="$(git rev-parse --git-path hooks)"
hook="$hooks_dir/pre-commit"
marker="# homelab secret guard"
if [[ -e "$hook" ]] && ! grep -qF "$marker" "$hook" && [[ "$force" != "--force" ]]; then
  echo "install-hooks.sh: $hook exists and is not ours; rerun with --force to replace it" >&2
  exit 1
fi
mkdir -p "$hooks_dir"
cat >"$hook" <<'HOOK'
#!/usr/bin/env bash
# homelab secret guard (written by scripts/install-hooks.sh)
set -euo pipefail
refused=()
while IFS= read -r -d '' path; do
  name="${path##*/}"
  case "$name" in
    .env.example|.env.enc) ;;
    .env*|*.env) refused+=("$path: a plain env file (commit .env.enc, see scripts/secrets-encrypt.sh)") ; continue ;;
  esac
  case "$path" in
    .sops/*|*/.sops/*) refused+=("$path: under .sops/ (the age private key lives there)") ; continue ;;
    credentials/*|*/credentials/*) refused+=("$path: under credentials/") ; continue ;;
  esac
  # A whole key (prefix + 58 bech32 characters), not code or docs that name the prefix.
  if git show ":$path" 2>/dev/null | grep -Eq "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"; then
    refused+=("$path: looks like an age private key (AGE-SECRET-KEY-1…)")
  fi
  # HA's long-lived access tokens are JWTs: three base64url parts, the first two JSON.
  if git show ":$path" 2>/dev/null | grep -Eq "eyJ[A-Za-z0-9_-]{15,}\.eyJ[A-Za-z0-9_-]{15,}\.[A-Za-z0-9_-]{20,}"; then
    refused+=("$path: looks like a Home Assistant access token (a JWT)")
  fi
done < <(git diff --cached --name-only --diff-filter=ACMR -z)
if ((${#refused[@]})); then
  echo "pre-commit: refusing to commit secrets:" >&2
  printf '  %s\n' "${refused[@]}" >&2
  echo "unstage them with: git restore --staged <file>" >&2
  exit 1
fi
HOOK
chmod +x "$hook"
echo "installed $hook"
