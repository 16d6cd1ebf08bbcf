#!/bin/sh
# Set up the gateway machine's file system view, then exec COMMAND (the lab runs `sleep infinity` here and
# every gateway process enters this mount namespace with nsenter): the gateway package looks installed,
# and the host is not touched. Inside a private mount namespace (`ip netns exec <gw> unshare -m`):
#   /etc and /usr  = the unpacked .deb layered over the host's (read-only overlay: package files win);
#                    under it, SCRATCH/machine/etc holds what the Qubes agent would have written
#                    (resolv.conf with the netvm's 10.139.1.1/.2),
#   /run           = the lab's own /run for the gateway (shared by all gateway processes, like a real /run;
#                    it holds /run/qubes-service/<service>),
#   /var           = the host's /var with a scratch upper layer (state and logs land in the scratch dir).
#
# usage: gw-view.sh SCRATCH COMMAND [ARG...]
set -eu
scratch=$1
shift
mount --make-rprivate /
etc_lower="$scratch/pkg/etc:$scratch/machine/etc:/etc"
mount -t overlay qig-etc -o "lowerdir=$etc_lower" /etc
if [ -d "$scratch/pkg/usr" ]; then
	mount -t overlay qig-usr -o "lowerdir=$scratch/pkg/usr:/usr" /usr
fi
mount --bind "$scratch/run" /run
mount -t overlay qig-var -o "lowerdir=/var,upperdir=$scratch/var/upper,workdir=$scratch/var/work" /var
exec "$@"
