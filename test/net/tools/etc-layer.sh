#!/bin/sh
# Layer OVERRIDE/etc and OVERRIDE/usr (those that exist) over the gateway machine's /etc and /usr for one command
# (run inside a private copy of the machine's mount namespace: `nsenter -t <machine> -m -n -- unshare -m`). How a
# test simulates a broken or edited file of the package without changing the package or the other processes' view.
#
# usage: etc-layer.sh OVERRIDE COMMAND [ARG...]
set -eu
override=$1
shift
mount --make-rprivate /
for top in etc usr; do
	if [ -d "$override/$top" ]; then
		mount -t overlay "qig-$top-override" -o "lowerdir=$override/$top:/$top" "/$top"
	fi
done
exec "$@"
