#!/usr/bin/env bash
# The plugin's JS API (npm package tauri-plugin-keylink-api): its types check, it builds from
# its lockfile, the IIFE kept in the repository (api-iife.js, which the plugin injects as
# window.__TAURI__.keylink) is exactly what a fresh build makes, and its tests pass: the API's
# behaviour against a fake plugin at the IPC boundary, the IIFE, and the package `npm pack`
# makes (exactly the files package.json lists, with its types).
set -euo pipefail
cd "$(dirname "$0")/../crates/tauri-plugin-keylink"

kept=$(mktemp)
trap 'rm -f "$kept"' EXIT
cp api-iife.js "$kept"
npm run --silent check
npm run --silent build
if ! cmp -s "$kept" api-iife.js; then
    cp "$kept" api-iife.js
    echo "test-guest-js: api-iife.js differs from a fresh build of guest-js/; run \`npm run build\` in crates/tauri-plugin-keylink and commit it" >&2
    exit 1
fi
for file in dist-js/index.js dist-js/index.cjs dist-js/index.d.ts; do
    [[ -s $file ]] || { echo "test-guest-js: the build made no $file" >&2; exit 1; }
done
npm test --silent
echo "test-guest-js: the JS API type-checks, builds and passes its tests; api-iife.js matches the build"
