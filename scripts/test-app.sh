#!/usr/bin/env bash
# The desktop apps' tests: the app's unit tests (`cargo test` in src-tauri), then the end-to-end
# suites in tests/app/ against the built keylink-app and examples/tauri-host binaries, under Xvfb, in a private D-Bus
# session with its own gnome-keyring. Screenshots land in target/app-screenshots/.
#
#   scripts/test-app.sh                everything
#   scripts/test-app.sh e2e            only the end-to-end suites (the binaries must be built)
#   scripts/test-app.sh e2e PATTERN    only the end-to-end tests whose name matches PATTERN
#                                      (a JavaScript regular expression), e.g. 'cold start'
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

scripts/install-deps.sh
scripts/install-app-deps.sh

if [[ "${1:-}" != e2e ]]; then
    # The same build as `make test`, so nothing is built twice.
    cargo build --quiet --workspace --all-targets
    cargo test --quiet -p keylink-app
fi

rm -rf "$CARGO_TARGET_DIR/app-screenshots"
# xvfb-run gives the app a display; with-keyring.sh a session bus and a keyring of its own.
filter=()
if [[ -n "${2:-}" ]]; then
    filter=(--test-name-pattern="$2")
fi
xvfb-run -a -s "-screen 0 1280x900x24" scripts/with-keyring.sh \
    node --test --test-concurrency=1 --test-timeout=120000 "${filter[@]}" \
    tests/app/app.test.js tests/app/host.test.js
echo "Screenshots: $CARGO_TARGET_DIR/app-screenshots/"
