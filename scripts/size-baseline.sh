#!/usr/bin/env bash
# The yardstick for keylink-app's size: the smallest Tauri 2 app with what Keylink's app needs
# from Tauri (single-instance with its deep-link feature, deep-link, one window with one
# bundled page), made in a temporary directory from crates.io with the same dependency
# versions (this repository's Cargo.lock) and the same [profile.release] as Keylink, then
# built the way scripts/package.sh builds the app. Prints its stripped size beside
# keylink-app's and keylink's when those are built. Not part of `make test` (a cold release
# build of Tauri: about 10 minutes on 2 cores).
#
#   scripts/size-baseline.sh          builds in $CARGO_TARGET_DIR/size-baseline (kept, so a
#                                     second run only relinks)
#   KEEP=1 scripts/size-baseline.sh   also keeps the temporary project
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

dir="$(mktemp -d -t keylink-size-baseline.XXXXXX)"
if [[ -z "${KEEP:-}" ]]; then
    trap 'rm -rf "$dir"' EXIT
else
    echo "size-baseline: keeping $dir"
fi
app="$dir/minimal"
mkdir -p "$app/src" "$app/dist" "$app/icons"

# Keylink's release profile, verbatim: the [profile.release] table of the root Cargo.toml.
profile="$(awk '/^\[profile\.release\]/ { on = 1; print; next } /^\[/ { on = 0 } on' Cargo.toml)"
if [[ -z "$profile" ]]; then
    echo "size-baseline: no [profile.release] in Cargo.toml" >&2
    exit 1
fi

cat >"$app/Cargo.toml" <<EOF
[package]
name = "minimal-tauri"
version = "0.1.0"
edition = "2021"
publish = false

[build-dependencies]
tauri-build = { version = "2.7", default-features = false, features = [] }

[dependencies]
tauri = { version = "2.12", features = [] }
tauri-plugin-deep-link = "2.6"
tauri-plugin-single-instance = { version = "2.5", features = ["deep-link"] }
# generate_context!() expands to serde_json calls, as in every Tauri app's template.
serde_json = "1"

[workspace]

$profile
EOF

cat >"$app/build.rs" <<'EOF'
fn main() {
    tauri_build::build()
}
EOF

cat >"$app/src/main.rs" <<'EOF'
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|_app, _argv, _cwd| {}))
        .plugin(tauri_plugin_deep_link::init())
        .run(tauri::generate_context!())
        .expect("error while running the app");
}
EOF

cat >"$app/tauri.conf.json" <<'EOF'
{
  "productName": "Minimal",
  "version": "0.1.0",
  "identifier": "dev.keylink.minimal",
  "build": { "frontendDist": "dist" },
  "app": { "windows": [{ "title": "Minimal" }], "security": { "csp": "default-src 'self'" } },
  "bundle": { "active": false, "icon": ["icons/32x32.png", "icons/128x128.png", "icons/icon.png"] },
  "plugins": { "deep-link": { "desktop": { "schemes": ["dev.keylink.minimal"] } } }
}
EOF
echo '<!doctype html><title>Minimal</title><p>Hello.</p>' >"$app/dist/index.html"
cp icons/32x32.png icons/128x128.png icons/icon.png "$app/icons/"
# The same crate versions as Keylink: cargo drops what this app does not use.
cp Cargo.lock "$app/Cargo.lock"

echo "size-baseline: building $app (release, --features tauri/custom-protocol)..."
start=$(date +%s)
baseline_target="$CARGO_TARGET_DIR/size-baseline"
(cd "$app" && CARGO_TARGET_DIR="$baseline_target" cargo build --release --quiet --features tauri/custom-protocol)
echo "size-baseline: built in $(($(date +%s) - start)) s"

size() {
    local bin="$1"
    if [[ -x "$bin" ]]; then
        # strip again into a copy: a no-op for a profile that strips, a fair figure for one
        # that does not
        strip -o "$dir/stripped" "$bin"
        stat -c %s "$dir/stripped" | awk -v what="$2" '{ printf "%-50s %10d bytes  %5.1f MB\n", what, $1, $1 / 1e6 }'
    fi
}
echo "Stripped sizes, [profile.release] of $repo/Cargo.toml:"
size "$baseline_target/release/minimal-tauri" "minimal Tauri 2 app (deep-link, single-instance)"
size "$CARGO_TARGET_DIR/release/keylink-app" "keylink-app"
size "$CARGO_TARGET_DIR/release/keylink" "keylink (CLI)"
