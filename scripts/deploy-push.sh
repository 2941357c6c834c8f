#!/usr/bin/env bash
# Workstation side of a deploy: encrypt .env, commit tracked changes plus .env.enc
# (never untracked files), show what goes out, push with retries.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/deploy-push.sh [-y] MESSAGE

  -y   do not ask before committing and pushing
Encrypts .env → .env.enc, stages tracked files (git add -u) and .env.enc, lists
untracked files without adding them, shows the staged changes, commits with
MESSAGE and pushes the current branch (retries after 2, 4, 8, 16 s).
USAGE
}

assume_yes=false
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -y) assume_yes=true; shift ;;
esac
[[ $# -eq 1 && -n "$1" ]] || { usage >&2; exit 2; }
message="$1"
cd "$(git rev-parse --show-toplevel)"
# shellcheck source=scripts/lib/retry.sh
source scripts/lib/retry.sh

if [[ -f .env ]]; then
  scripts/secrets-encrypt.sh
else
  echo "no .env here: keeping .env.enc as it is"
fi

git add -u
[[ ! -f .env.enc ]] || git add .env.enc
untracked="$(git ls-files --others --exclude-standard)"
if [[ -n "$untracked" ]]; then
  echo "not added (untracked; add them yourself if they belong in git):"
  while IFS= read -r file; do echo "  $file"; done <<<"$untracked"
fi

if git diff --cached --quiet; then
  echo "nothing to commit"
else
  git diff --cached --stat
  if ! $assume_yes; then
    answer=""
    read -r -p "commit and push these changes? [y/N] " answer || true
    if [[ "$answer" != "y" && "$answer" != "Y" ]]; then
      echo "aborted; the changes stay staged"
      exit 1
    fi
  fi
  git commit -q -m "$message"
  echo "committed: $message"
fi

branch="$(git rev-parse --abbrev-ref HEAD)"
with_retries "git push" git push -q origin "$branch"
echo "pushed $branch"
