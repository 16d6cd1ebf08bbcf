#!/bin/sh
# Run a command as the app qube: its own resolv.conf (Qubes gives app qubes 10.139.1.1 and 10.139.1.2),
# bind-mounted inside a private mount namespace (the caller runs us under `ip netns exec <client> unshare -m`).
#
# usage: client-view.sh SCRATCH COMMAND [ARG...]
set -eu
scratch=$1
shift
mount --make-rprivate /
mount --bind "$scratch/client/resolv.conf" /etc/resolv.conf
exec "$@"
