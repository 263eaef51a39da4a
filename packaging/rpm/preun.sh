# The .rpm's %preun (run by /bin/sh): on the final removal ($1, the versions left afterwards,
# is 0; not on an upgrade), undoes %post's `systemctl --global enable` while the unit file is
# still there.
set -e

if [ "$1" -eq 0 ]; then
    # A system without systemd had nothing enabled.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --global disable keylink-agent.socket
    fi
fi
