#!/usr/bin/env bash
# Checks a runtime laid out by image-build.sh as the image runs it: no sources
# and no tsx in it, the compiled broker starts from a minimal config (as an
# unprivileged user, under tini when there is one), the image's health check
# (`token-broker health`) answers SERVING, and SIGTERM ends it with exit 0.
#
#   bash scripts/image-smoke.sh APP_DIR
set -euo pipefail

app="$(cd "${1:?usage: image-smoke.sh APP_DIR}" && pwd)"
say() { echo "image-smoke: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

[ -f "$app/dist/src/cli/main.js" ] || fail "no compiled CLI in $app/dist"
[ ! -e "$app/src" ] || fail "sources shipped in $app/src"
[ ! -e "$app/node_modules/tsx" ] || fail "tsx shipped in $app/node_modules"

work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
# The SQLite store, so the native addon is loaded from the pruned install too.
mkdir -m 777 "$work/data"
cat >"$work/config.yaml" <<'YAML'
listen: { grpc: 127.0.0.1:0, connect: 127.0.0.1:0 }
upstream: { baseUrl: "http://127.0.0.1:9", timeoutMs: 1000 }
shutdown: { graceMs: 2000, preStopDelayMs: 200 }
store: { type: sqlite, path: DATA/broker.db }
apps:
  - id: smoke
    appid: wx00000000000000s1
    secret: { env: SMOKE_APPSECRET }
    prefetch: false
YAML
sed -i "s|DATA/|$work/data/|" "$work/config.yaml"

# As the image runs it: node as PID 1's child through tini, an unprivileged user.
run=(node "$app/bin/token-broker.js")
if command -v tini >/dev/null 2>&1; then run=(tini -- "${run[@]}"); fi
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
  run=(setpriv --reuid=65534 --regid=65534 --clear-groups "${run[@]}")
fi
say "starting: ${run[*]} serve"
(cd / && SMOKE_APPSECRET=smoke-secret-not-real-0001 TOKEN_BROKER_RUNTIME=compiled \
  exec "${run[@]}" serve --config "$work/config.yaml") >"$work/out.log" 2>"$work/err.log" &
pid=$!

addr=""
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$work/out.log" "$work/err.log" >&2
    fail "the broker exited before serving"
  fi
  line="$(grep -m1 '"msg":"token broker serving"' "$work/out.log" || true)"
  if [ -n "$line" ]; then
    addr="$(sed -E 's/.*"grpc":"http:\/\/([^"]+)".*/\1/' <<<"$line")"
    break
  fi
  sleep 0.1
done
[ -n "$addr" ] || fail "not serving after 60 s"
say "serving on $addr"

status="$(TOKEN_BROKER_RUNTIME=compiled node "$app/bin/token-broker.js" health --addr "$addr")" ||
  fail "health check exited $?"
[ "$status" = SERVING ] || fail "health check answered '$status'"
say "health: $status"

kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=""
grep -q '"msg":"stopped"' "$work/out.log" || fail "no 'stopped' line after SIGTERM"
[ "$code" = 0 ] || { cat "$work/err.log" >&2; fail "SIGTERM: exit $code"; }
[ -s "$work/data/broker.db" ] || fail "the SQLite store wrote no file"
say "SIGTERM: exit 0"
echo "image-smoke: ok"
