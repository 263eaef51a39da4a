#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with its own, unlocked gnome-keyring (the
# Secret Service), so tests never touch the user's real keyring.
#
#   scripts/with-keyring.sh COMMAND [ARGS...]
#
# Re-executes itself under dbus-run-session; the keyring daemon keeps its files in a temporary
# directory that is removed afterwards, and is stopped by its PID.
set -euo pipefail

if [[ "${KEYLINK_IN_TEST_SESSION:-}" != 1 ]]; then
    export KEYLINK_IN_TEST_SESSION=1
    exec dbus-run-session -- "$0" "$@"
fi

keyring_home="$(mktemp -d -t keylink-keyring.XXXXXX)"
mkdir -p "$keyring_home/data" "$keyring_home/run" "$keyring_home/config"
chmod 700 "$keyring_home/run"

# The daemon alone gets the temporary HOME and XDG directories: its keyring files and control
# socket live there, never in the user's.
eval "$(printf 'keylink-test' | HOME="$keyring_home" XDG_DATA_HOME="$keyring_home/data" \
    XDG_CONFIG_HOME="$keyring_home/config" XDG_RUNTIME_DIR="$keyring_home/run" \
    gnome-keyring-daemon --daemonize --unlock --components=secrets)"
keyring_pid="${GNOME_KEYRING_PID:-}"
export GNOME_KEYRING_CONTROL

cleanup() {
    if [[ -n "$keyring_pid" ]]; then
        kill "$keyring_pid" 2>/dev/null || true
    fi
    rm -rf "$keyring_home"
}
trap cleanup EXIT

# Wait until the Secret Service name is owned on the bus before the first client call.
for _ in $(seq 1 100); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
        | grep -q 'boolean true'; then
        break
    fi
    sleep 0.1
done
if ! dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets | grep -q 'boolean true'; then
    echo "with-keyring.sh: gnome-keyring did not provide the Secret Service on the session bus" >&2
    exit 1
fi

"$@"
