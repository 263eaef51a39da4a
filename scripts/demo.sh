#!/usr/bin/env bash
# Links a demo account with the real `keylink` CLI: starts the bundled demo provider (its own
# login page accepts any username and password) on 127.0.0.1, points Keylink at it, and runs
# `keylink link demo`, which opens your browser. Tokens go to your keychain under the service
# "dev.keylink"; the demo's account index lives in target/demo/data.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${DEMO_PORT:-4433}"
demo="$PWD/target/demo"
mkdir -p "$demo"
cargo build --quiet --bin keylink
keylink="$PWD/target/debug/keylink"

# shellcheck source=scripts/demo-provider.sh
source scripts/demo-provider.sh
start_demo_provider "$port" "$demo" loopback

link_args=(link demo)
if [[ -z "${BROWSER:-}" && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" && "$(uname)" == Linux ]]; then
    echo "There is no display here, so no browser can be opened: open the URL below in a browser on this machine."
    link_args+=(--no-browser)
fi
account="$("$keylink" "${link_args[@]}")"
echo
"$keylink" list
echo
token="$("$keylink" token "$account")"
echo "keylink token $account  ->  ${token:0:12}... (from the keychain, no sign-in)"
token="$("$keylink" token "$account" --min-ttl 999999)"
echo "keylink token $account --min-ttl 999999  ->  ${token:0:12}... (refreshed at the provider)"
echo
# The demo provider stops with this script, so leave nothing of the demo account behind.
"$keylink" unlink "$account"
