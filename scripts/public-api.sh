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

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
target_dir="${CARGO_TARGET_DIR:-target}"

# rustdoc's JSON output is unstable (-Z unstable-options); on the stable toolchain
# RUSTC_BOOTSTRAP is the only way to it. It is set for rustdoc alone, through a RUSTDOC
# wrapper: no dependency and no build script sees it, so the dependencies checked for
# `cargo clippy` are used as they are, in the same target directory, and nothing is rebuilt
# for the normal build afterwards.
wrapper="$out/rustdoc"
printf '#!/bin/sh\nRUSTC_BOOTSTRAP=1 exec %q "$@"\n' "$(rustup which rustdoc 2>/dev/null || command -v rustdoc)" >"$wrapper"
chmod +x "$wrapper"
for package in keylink tauri-plugin-keylink; do
    # The plugin has no cargo features; keylink's one, `fuzzing`, is not part of the API.
    # Documentation lints (`-A warnings`) are `cargo doc`'s business, not this listing's.
    RUSTDOC="$wrapper" cargo rustdoc --quiet -p "$package" --lib \
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
