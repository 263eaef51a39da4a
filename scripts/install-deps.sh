#!/usr/bin/env bash
# Installs what building and testing Keylink needs on Debian/Ubuntu, skipping what is there:
# Debian packages (D-Bus, gnome-keyring, secret-tool, Node.js, git, kubectl, systemd's tools), cargo-audit
# from the crate registry, and the test provider's npm packages from its lockfile. Run as
# root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have dbus-run-session || need_apt+=(dbus)
have dbus-send || need_apt+=(dbus)
have gnome-keyring-daemon || need_apt+=(gnome-keyring)
have secret-tool || need_apt+=(libsecret-tools)
have node || need_apt+=(nodejs)
have npm || need_apt+=(npm)
have openssl || need_apt+=(openssl)
# The credential helpers' tests drive the real tools: git, and kubectl against a fake cluster.
have git || need_apt+=(git)
have kubectl || need_apt+=(kubernetes-client)
# GNU time measures the peak memory of a process in the size-cap tests.
[[ -x /usr/bin/time ]] || need_apt+=(time)
# The packages' tests verify the token agent's systemd user units (systemd-analyze) and start
# the installed agent the way the socket unit does (systemd-socket-activate).
{ have systemd-analyze && have systemd-socket-activate; } || need_apt+=(systemd)
# The token agent's test connects as another user with a client of its own.
[[ -x /usr/bin/python3 ]] || need_apt+=(python3)

if ((${#need_apt[@]})); then
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        have sudo || { echo "install-deps: missing ${need_apt[*]}; install them as root" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "install-deps: installing ${need_apt[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! have cargo; then
    echo "install-deps: Rust is not installed; install it with rustup (https://rustup.rs), Rust 1.90 or newer" >&2
    exit 1
fi

# cargo-audit for the offline dependency audit (scripts/audit.sh); a few minutes to build.
if ! cargo audit --version >/dev/null 2>&1; then
    echo "install-deps: installing cargo-audit" >&2
    cargo install cargo-audit --locked --quiet
fi

# The test identity provider's packages, exactly as locked.
if [[ ! -d tests/idp/node_modules/oidc-provider ]] || [[ tests/idp/package-lock.json -nt tests/idp/node_modules/.package-lock.json ]]; then
    npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
fi

# The plugin's JS API toolchain (TypeScript, esbuild), exactly as locked.
plugin=crates/tauri-plugin-keylink
if [[ ! -d $plugin/node_modules/esbuild ]] || [[ $plugin/package-lock.json -nt $plugin/node_modules/.package-lock.json ]]; then
    npm ci --prefix "$plugin" --no-audit --no-fund --loglevel=error
fi
