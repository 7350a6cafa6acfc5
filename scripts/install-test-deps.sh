#!/usr/bin/env bash
# Installs from Debian what the test suite needs and a fresh machine may lack:
#   - redis-server: integration tests start their own redis-server processes.
#   - python3-grpcio, python3-grpc-tools, python3-protobuf for the Debian
#     interpreter /usr/bin/python3: test/polyglot generates Python stubs from
#     our proto and calls the broker from Python.
#   - kubernetes-client (only where no kubectl is on the PATH): test/deploy
#     renders the Kubernetes manifests with `kubectl kustomize`.
#   - nghttp2-client (optional): h2load, for the hot path in the benchmarks'
#     smoke run (test/bench); without it that test leaves the hot path out
#     and says so, so a failed install of it does not stop the suite.
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

if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

# shellcheck source=lib/apt-install.sh
source "$(dirname "$0")/lib/apt-install.sh"

if ! command -v h2load >/dev/null 2>&1; then
  apt_install install-test-deps nghttp2-client ||
    echo "install-test-deps: could not install nghttp2-client (h2load); the benchmark smoke test will leave the hot path out" >&2
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

apt_install install-test-deps "${missing[@]}"

# Fail here, not in the middle of the test run, if the install did not take.
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  command -v redis-server >/dev/null
fi
if [[ " ${missing[*]} " == *" python3-grpcio "* ]]; then
  /usr/bin/python3 -c "import grpc, grpc_tools"
fi
if [[ " ${missing[*]} " == *" kubernetes-client "* ]]; then
  kubectl kustomize --help >/dev/null
fi
