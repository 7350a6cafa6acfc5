#!/usr/bin/env bash
# Installs from Debian what the benchmarks need and a fresh machine may lack:
#   - nghttp2-client: h2load, the HTTP/2 load generator bench/hot-path.ts drives.
# Idempotent: does nothing when h2load is already on the PATH; otherwise
# refreshes the package lists, installs, and prints one line.
set -euo pipefail

if command -v h2load >/dev/null 2>&1; then
  exit 0
fi

# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install install-bench-deps nghttp2-client
