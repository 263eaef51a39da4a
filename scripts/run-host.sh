#!/usr/bin/env bash
# Opens the example app that embeds tauri-plugin-keylink (examples/tauri-host: "Notes",
# identifier and URL scheme com.example.notes) against the bundled demo provider, so you can
# link a demo account in your own browser. The host reads its providers from
# ~/.config/com.example.notes/keylink.toml ($APPCONFIG/keylink.toml in its tauri.conf.json):
# this script writes that file for the demo provider when it is missing or was written here
# before. The plugin registers com.example.notes: URLs for the host at startup; its accounts
# live in ~/.local/share/com.example.notes and your keychain (service com.example.notes).
# DEMO_PORT changes the provider's port (default 4433).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [[ "$(uname)" == Linux && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
    echo "run-host: there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the example app cannot open a window." >&2
    echo "run-host: run this from a desktop session." >&2
    exit 1
fi

port="${DEMO_PORT:-4433}"
demo="$CARGO_TARGET_DIR/demo/host"
echo "Building the example (the first build takes a few minutes)..."
# The same build as `make test`, so a binary built there is not built again.
cargo build --quiet --workspace --all-targets
host="$CARGO_TARGET_DIR/debug/keylink-example-host"

# shellcheck source=scripts/demo-provider.sh
source scripts/demo-provider.sh
start_demo_provider "$port" "$demo" deep-link

marker="# Written by make run-host for the demo provider; delete this file to stop using it."
config_dir="${XDG_CONFIG_HOME:-$HOME/.config}/com.example.notes"
config="$config_dir/keylink.toml"
if [[ -e "$config" ]] && ! head -n 1 "$config" | grep -qxF "$marker"; then
    echo "run-host: $config exists and was not written by make run-host; the example uses it as it is." >&2
else
    mkdir -p "$config_dir"
    {
        echo "$marker"
        # The demo provider's configuration, and its origin for the example's API form.
        cat "$KEYLINK_CONFIG"
        echo "api_origins = [\"http://127.0.0.1:$port\"]"
    } >"$config.tmp"
    mv "$config.tmp" "$config"
fi

echo "Notes is opening: click \"Link your Keylink demo provider account\", sign in with any name in your browser,"
echo "then call the API with http://127.0.0.1:$port/me. Close the window to stop."
"$host"
