# shellcheck shell=bash
# apt_install PACKAGE...: installs Debian packages without questions, with sudo when
# not root. The scripts call it only for what is missing.
apt_install() {
  local sudo=()
  [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
  echo "installing: $*"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
