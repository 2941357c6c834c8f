# shellcheck shell=bash
# with_retries DESCRIPTION COMMAND...: runs COMMAND, retrying after each delay in
# DEPLOY_RETRY_DELAYS (default "2 4 8 16" seconds) while it fails.
with_retries() {
  local what="$1"
  shift
  local delays
  read -ra delays <<<"${DEPLOY_RETRY_DELAYS:-2 4 8 16}"
  local delay
  for delay in "${delays[@]}"; do
    if "$@"; then
      return 0
    fi
    echo "$what failed; retrying in ${delay}s" >&2
    sleep "$delay"
  done
  if "$@"; then
    return 0
  fi
  echo "$what failed after $((${#delays[@]} + 1)) attempts" >&2
  return 1
}
