#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh
# Debian machine, then fmt check, clippy -D warnings, every test, shellcheck.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/test.sh
Installs mosquitto and shellcheck with apt when missing, then runs
cargo fmt --check, cargo clippy -D warnings, the workspace's tests
(cargo nextest, or cargo test without it) and shellcheck on every script.
USAGE
  exit 0
fi
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Home Assistant core for the HA client tests, cached outside git; reinstalled when
# scripts/ha-test-requirements.txt changes.
ha_venv="${HOMELAB_HA_VENV:-$HOME/.cache/homelab/ha-venv}"
ha_stamp="$ha_venv/.requirements.sha256"
ha_wanted="$(sha256sum scripts/ha-test-requirements.txt | cut -d' ' -f1)"
if [[ ! -x "$ha_venv/bin/hass" || "$(cat "$ha_stamp" 2>/dev/null)" != "$ha_wanted" ]]; then
  echo "installing Home Assistant core into $ha_venv (once; a few minutes)"
  python3 -m venv "$ha_venv"
  "$ha_venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/ha-test-requirements.txt
  echo "$ha_wanted" >"$ha_stamp"
fi

# The independent SOPS implementation for the compatibility test (pinned, lockfile).
if [[ ! -f tools/sops-dotenv/compat/node_modules/sops-age/package.json ]]; then
  echo "installing the npm packages of tools/sops-dotenv/compat"
  (cd tools/sops-dotenv/compat && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== shellcheck"
shellcheck -x scripts/*.sh scripts/lib/*.sh .ci/run infrastructure/mosquitto/entrypoint.sh
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
  cargo test --workspace --all-features --doc # nextest does not run doctests
else
  cargo test --workspace --all-features --no-fail-fast
fi
echo "== local run smoke test"
smoke_log="$(mktemp)"
scripts/run-local.sh --duration 4 >"$smoke_log" 2>&1 || {
  cat "$smoke_log"
  exit 1
}
grep -q "service_started" "$smoke_log" || {
  echo "run-local.sh did not start example-service:"
  cat "$smoke_log"
  exit 1
}
rm -f "$smoke_log"
echo "all checks passed"
