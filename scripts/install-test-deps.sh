#!/usr/bin/env bash
# Installs from Debian what the test suite needs and a fresh machine may lack:
#   - redis-server: integration tests start their own redis-server processes.
#   - python3-grpcio, python3-grpc-tools, python3-protobuf for the Debian
#     interpreter /usr/bin/python3: test/polyglot generates Python stubs from
#     our proto and calls the broker from Python.
#   - nghttp2-client: h2load, for the benchmarks' smoke run (test/bench).
# Idempotent: installs only what is missing, refreshes the package lists only
# when something is, and prints one line per thing installed.
set -euo pipefail

missing=()

if ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi

if ! /usr/bin/python3 -c "import grpc, grpc_tools" >/dev/null 2>&1; then
  missing+=(python3-grpcio python3-grpc-tools python3-protobuf)
fi

if ! command -v h2load >/dev/null 2>&1; then
  missing+=(nghttp2-client)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"
apt_install install-test-deps "${missing[@]}"

# Fail here, not in the middle of the test run, if the install did not take.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  command -v redis-server >/dev/null
fi
if [[ " ${missing[*]} " == *" python3-grpcio "* ]]; then
  /usr/bin/python3 -c "import grpc, grpc_tools"
fi
if [[ " ${missing[*]} " == *" nghttp2-client "* ]]; then
  command -v h2load >/dev/null
fi
