#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need on a fresh
# Debian machine, then fmt check, clippy -D warnings, every test, shellcheck.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  cat <<'USAGE'
usage: scripts/test.sh
Installs mosquitto, shellcheck, openssl and chromium (+ its driver) with apt when missing, then runs
cargo fmt --check, cargo clippy -D warnings, the workspace's tests
(cargo nextest, or cargo test without it) and shellcheck on every script.
USAGE
  exit 0
fi
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

missing=()
command -v mosquitto >/dev/null 2>&1 || [[ -x /usr/sbin/mosquitto ]] || missing+=(mosquitto)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
# ev-forecast's Google test makes RSA keys and checks signatures with it.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# The dashboard's browser test: headless Chromium driven over WebDriver.
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium chromium-driver)
if ((${#missing[@]})); then
  apt_install "${missing[@]}"
fi

# Python-packaged counterparts, each in a virtualenv cached outside git and
# reinstalled when its requirements file changes: Home Assistant core for the HA
# client tests, the real sops for the SOPS compatibility test, schemathesis for the
# dashboard's API.
ensure_venv() { # DIR REQUIREMENTS
  local venv="$1" requirements="$2" stamp="$1/.requirements.sha256" wanted
  wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
    echo "installing $requirements into $venv (once)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
  fi
}
ensure_venv "${HOMELAB_HA_VENV:-$HOME/.cache/homelab/ha-venv}" scripts/ha-test-requirements.txt
ensure_venv "$HOME/.cache/homelab/sops-venv" scripts/sops-test-requirements.txt
ensure_venv "$HOME/.cache/homelab/schemathesis-venv" scripts/schemathesis-test-requirements.txt

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
