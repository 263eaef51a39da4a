#!/usr/bin/env bash
# Installs what building, packaging and testing the desktop app (src-tauri/) needs on
# Debian/Ubuntu, skipping what is there: the WebKitGTK/GTK development packages Tauri links
# against, Xvfb and WebKitWebDriver for the end-to-end tests, xdg-utils (the app registers its
# URL scheme with `xdg-mime`) and GIO's `gio`, `tauri-driver` (cargo); for the packages
# (scripts/package.sh, scripts/test-packages.sh) dpkg-dev (dpkg-shlibdeps), desktop-file-utils
# (desktop-file-validate, and the MIME cache trigger when a package adds a desktop entry), rpm
# (reading the .rpm) and the Tauri bundler, npm @tauri-apps/cli from packaging/package-lock.json.
# Run as root, or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

need_apt=()
for pkg in libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev \
    libjavascriptcoregtk-4.1-dev pkg-config build-essential \
    xvfb xauth webkit2gtk-driver curl openssl xdg-utils libglib2.0-bin \
    dpkg-dev binutils desktop-file-utils rpm; do
    installed "$pkg" || need_apt+=("$pkg")
done

if ((${#need_apt[@]})); then
    sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        have sudo || { echo "install-app-deps: missing ${need_apt[*]}; install them as root" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "install-app-deps: installing ${need_apt[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! have cargo; then
    echo "install-app-deps: Rust is not installed; install it with rustup (https://rustup.rs)" >&2
    exit 1
fi

# The WebDriver bridge between WebdriverIO and WebKitWebDriver (about a minute to build).
if ! have tauri-driver; then
    echo "install-app-deps: installing tauri-driver" >&2
    cargo install tauri-driver --locked --quiet
fi

# The Tauri bundler for the .deb and .rpm, exactly as locked (it ships prebuilt in the npm
# package: no cargo build of tauri-cli).
if [[ ! -x packaging/node_modules/.bin/tauri ]] || [[ packaging/package-lock.json -nt packaging/node_modules/.package-lock.json ]]; then
    npm ci --prefix packaging --no-audit --no-fund --loglevel=error
fi
