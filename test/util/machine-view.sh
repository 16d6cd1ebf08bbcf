#!/bin/sh
# A machine of the tests (the lab's gateway qube or app qube, or one command of a render test): a Debian 13 root
# of its own, entered inside the caller's network namespace, so every program it runs (tor, i2pd, dnsmasq,
# tinyproxy, nft, python3, curl, setpriv, lintian, systemd-analyze) is the one a debian-13-minimal template has,
# and nothing of the host's is used or touched.
#
# Inside a private mount namespace (the caller runs us under `unshare -m`, after `ip netns exec <ns>` if any):
#   /        = an overlay: LOWERS (left wins; for the gateway: the unpacked .deb, then what the Qubes agent
#              would have written, then the cached Debian 13 oracles root) under an upper layer in
#              STATE/machines/NAME, so state, logs and users added by a test land there and die with it;
#   /proc, /sys (this network namespace's), /dev (the host's devices), a tmpfs /tmp;
#   /run     = RUN, the machine's own (the gateway's holds /run/qubes-service/<service>);
#   SHARE    = a host directory at the same path (the lab's scratch directory; a render test's temp dirs).
# Then COMMAND runs chrooted there (the lab runs `sleep infinity`; every process of the machine enters this
# mount namespace and root with `nsenter -m -n -r -w`).
#
# usage: machine-view.sh NAME STATE RUN LOWERS SHARE COMMAND [ARG...]
set -eu
name=$1 state=$2 run=$3 lowers=$4 share=$5
shift 5
m="$state/machines/$name"
r="$m/root"
mkdir -p "$m/upper" "$m/work" "$r"
mount --make-rprivate /
mount -t overlay "qig-$name" -o "lowerdir=$lowers,upperdir=$m/upper,workdir=$m/work" "$r"
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev qig-tmp "$r/tmp"
mkdir -p "$r/run" "$r$share"
mount --bind "$run" "$r/run"
mount --bind "$share" "$r$share"
exec chroot "$r" "$@"
