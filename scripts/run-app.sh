#!/usr/bin/env bash
# Starts the Keylink desktop app against the bundled demo provider (its own login page accepts
# any username and password), so you can link a demo account in your own browser right away.
# The browser hands the redirect back through the dev.keylink: URL scheme, which the app
# registers for itself at startup. KEYLINK_DEMO_REDIRECT=loopback uses a loopback redirect
# instead; DEMO_PORT changes the provider's port (default 4433). Tokens go to your keychain;
# the demo's account index lives in target/demo/app/data.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if [[ "$(uname)" == Linux && -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
    echo "run-app: there is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot open a window." >&2
    echo "run-app: run this from a desktop session, or try the command-line demo instead: make demo-cli" >&2
    exit 1
fi

port="${DEMO_PORT:-4433}"
redirect="${KEYLINK_DEMO_REDIRECT:-deep-link}"
demo="$CARGO_TARGET_DIR/demo"
mkdir -p "$demo"
echo "Building the app (the first build takes a few minutes)..."
# The same build as `make test`, so an app built there is not built again.
cargo build --quiet --workspace --all-targets
app="$CARGO_TARGET_DIR/debug/keylink-app"

# shellcheck source=scripts/demo-provider.sh
source scripts/demo-provider.sh
start_demo_provider "$port" "$demo/app" "$redirect"

echo "Keylink is opening: click Link next to \"Keylink demo provider\". Close the window to stop."
"$app"
