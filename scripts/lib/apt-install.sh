# Sourced by the install scripts. apt_install WHO PACKAGE...: installs Debian
# packages (as root, or through sudo when that is there), then prints one line
# per package, prefixed with WHO.
apt_install() {
  local who=$1
  shift
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      as_root=(sudo)
    else
      echo "${who}: need root to install: $*" >&2
      return 1
    fi
  fi
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  local package
  for package in "$@"; do
    echo "${who}: installed ${package}"
  done
}
