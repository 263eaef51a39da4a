# The .rpm's %post (run by /bin/sh): enables the token agent's socket (/usr/lib/systemd/user/
# keylink-agent.socket) for every user, so each user manager listens on it from the next
# login on and starts `keylink agent` at the first request. `systemctl --global enable` only
# creates the symlink in /etc/systemd/user/sockets.target.wants and needs no running systemd.
# $1 is how many versions of the package are installed once this one is: 1 on a first
# installation; an upgrade keeps what the administrator chose with
# `systemctl --global disable keylink-agent.socket`.
set -e

if [ "$1" -eq 1 ]; then
    # A system without systemd has no user managers to start the agent: nothing to enable.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --global enable keylink-agent.socket
    fi
fi
