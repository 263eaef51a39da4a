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

node tests/idp/server.js --port "$port" --interactive >"$demo/idp.out" 2>"$demo/idp.log" &
idp_pid=$!
trap 'kill "$idp_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    [[ -s "$demo/idp.out" ]] && break
    kill -0 "$idp_pid" 2>/dev/null || { echo "demo: the demo provider did not start; see $demo/idp.log" >&2; exit 1; }
    sleep 0.1
done
[[ -s "$demo/idp.out" ]] || { echo "demo: the demo provider did not start within 10 s; see $demo/idp.log" >&2; exit 1; }

cat >"$demo/keylink.toml" <<TOML
[providers.demo]
name = "Keylink demo provider"
issuer = "http://127.0.0.1:$port"
client_id = "keylink-demo"
scopes = ["openid", "profile", "email", "offline_access"]
redirect = "loopback"
TOML
export KEYLINK_CONFIG="$demo/keylink.toml"
export KEYLINK_DATA_DIR="$demo/data"

echo "Demo provider running at http://127.0.0.1:$port (sign in with any username and password)."
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
