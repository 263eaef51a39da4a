#!/usr/bin/env bash
# Lists the public API of the library crates, keylink and tauri-plugin-keylink, one line per
# item, into crates/<crate>/public-api.txt (from rustdoc's JSON, by scripts/public_api.py), so a
# change to the API shows in review. With --check it writes nothing and fails, showing the
# difference, when a committed listing no longer matches the code.
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    *)
        echo "usage: scripts/public-api.sh [--check]" >&2
        exit 2
        ;;
esac

# A target directory of its own: the JSON build runs with another RUSTC_BOOTSTRAP than the
# normal build, and dependencies whose build scripts watch that variable would otherwise be
# rebuilt in target/debug each time one build follows the other.
target_dir="target/public-api"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# rustdoc's JSON output is unstable (-Z unstable-options), and on the stable toolchain
# RUSTC_BOOTSTRAP is the only way to it; naming the two crates (rather than "1") keeps every
# dependency, and its build script's probes, on stable. One value for both runs, so neither
# invalidates what the other built.
export RUSTC_BOOTSTRAP="keylink,tauri_plugin_keylink"
for package in keylink tauri-plugin-keylink; do
    # The plugin has no cargo features; keylink's one, `fuzzing`, is not part of the API.
    # Documentation lints (`-A warnings`) are `cargo doc`'s business, not this listing's.
    cargo rustdoc --quiet -p "$package" --lib --target-dir "$target_dir" \
        -- -Z unstable-options --output-format json -A warnings
done

json="$target_dir/doc"
python3 scripts/public_api.py "$json/keylink.json" >"$out/keylink"
# keylink's JSON too, so the plugin's listing names the core's types by their public paths.
python3 scripts/public_api.py "$json/tauri_plugin_keylink.json" "$json/keylink.json" \
    >"$out/tauri-plugin-keylink"

stale=()
for crate in keylink tauri-plugin-keylink; do
    listing="crates/$crate/public-api.txt"
    if $check; then
        if ! diff -uN --label "$listing (committed)" --label "$listing (the code now)" \
            "$listing" "$out/$crate"; then
            stale+=("$listing")
        fi
    elif ! cmp -s "$out/$crate" "$listing"; then
        cp "$out/$crate" "$listing"
        echo "public-api: updated $listing; review the change, it is a change to the API" >&2
    fi
done

if ((${#stale[@]})); then
    echo "public-api: the public API listing (${stale[*]}) no longer matches the code, see the" \
        "diff above; run scripts/public-api.sh and review the change before committing it" >&2
    exit 1
fi
