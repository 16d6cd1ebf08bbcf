#!/bin/sh
# Layer OVERRIDE/etc over the gateway machine's /etc for one command (run inside a private copy of the
# machine's mount namespace: `nsenter -t <machine> -m -n -- unshare -m`). How a test simulates an admin's
# broken edit of a conffile without changing the package or the other processes' view.
#
# usage: etc-layer.sh OVERRIDE COMMAND [ARG...]
set -eu
override=$1
shift
mount --make-rprivate /
mount -t overlay qig-etc-override -o "lowerdir=$override/etc:/etc" /etc
exec "$@"
