#!/usr/bin/env bash
# The container image's build steps, run by the Dockerfile's build stage and by
# CI in a clean copy of the tree (test/deploy/image-build.test.ts), so the
# recipe is tested where no container engine runs.
#
#   bash scripts/image-build.sh OUT_DIR
#
# From the tree this script belongs to: installs exactly the lockfile (npm ci,
# development dependencies included: tsc builds), compiles to dist/, prunes to
# production dependencies, then lays the runtime out in OUT_DIR: package.json,
# bin/, dist/ and node_modules (no sources, tests, proto, tsx or
# build tools). bin/token-broker.js there runs the compiled code.
# IMAGE_NPM_CI_FLAGS adds flags to npm ci (CI passes --offline: the packages
# come from npm's cache, as the tree's own npm ci left them).
set -euo pipefail

out="${1:?usage: image-build.sh OUT_DIR}"
cd "$(dirname "$0")/.."
say() { echo "image-build: $*" >&2; }

say "npm ci ${IMAGE_NPM_CI_FLAGS:-}"
# shellcheck disable=SC2086 # the flags are words on purpose
npm ci --no-audit --no-fund ${IMAGE_NPM_CI_FLAGS:-}
say "npm run build"
npm run build
say "npm prune --omit=dev"
npm prune --omit=dev --no-audit --no-fund

if [ -e node_modules/tsx ] || [ -e node_modules/typescript ]; then
  say "development dependencies survived the prune" && exit 1
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
cp package.json "$out/"
cp -R bin "$out/bin"
# dist/ holds what tsconfig.build.json compiles: src/, gen/ and what they import.
cp -R dist "$out/dist"
# Source maps point at sources the image does not ship.
find "$out/dist" -name '*.map' -delete
cp -R node_modules "$out/node_modules"
# Workspace packages (client libraries) are linked, not installed: the broker
# does not import them, and their links would point outside the image.
find "$out/node_modules" -maxdepth 2 -type l -lname '../*packages/*' -delete
# better-sqlite3 needs its compiled addon, not the SQLite sources it was built from.
rm -rf "$out/node_modules/better-sqlite3/deps" "$out/node_modules/better-sqlite3/src" \
  "$out/node_modules/better-sqlite3/build/Release/obj" "$out/node_modules/better-sqlite3/build/Release/obj.target"
npm_modules=$(find "$out/node_modules" -mindepth 1 -maxdepth 1 | wc -l)
say "runtime in $out: $(du -sh "$out" | cut -f1), $npm_modules entries in node_modules"
