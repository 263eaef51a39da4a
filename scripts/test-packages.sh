#!/usr/bin/env bash
# The Linux packages' tests (tests/packages/packages.test.js): builds the .deb and .rpm
# (scripts/package.sh), then checks them unpacked and, when run as root, installs the .deb with
# dpkg, hands sign-ins to the installed app through xdg-open and gio open (cold and running)
# and removes it again. Runs under Xvfb in a private D-Bus session with its own gnome-keyring.
# Not root: the install part is reported as SKIPPED.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

scripts/install-deps.sh
scripts/install-app-deps.sh
scripts/package.sh

xvfb-run -a -s "-screen 0 1280x900x24" scripts/with-keyring.sh \
    node --test --test-concurrency=1 --test-timeout=180000 tests/packages/packages.test.js
