#!/bin/sh
# A lab machine (the gateway qube, or the app qube): a Debian 13 root of its own, entered inside the machine's
# network namespace, so every program it runs (tor, i2pd, dnsmasq, tinyproxy, nft, python3, curl, setpriv) is
# the one a debian-13-minimal template has, and nothing of the host's is used or touched.
#
# Inside a private mount namespace (the caller runs us under `ip netns exec <ns> unshare -m`):
#   /        = an overlay: LOWERS (left wins; for the gateway: the unpacked .deb, then what the Qubes agent
#              would have written, then the cached Debian 13 oracles root) under a scratch upper layer, so
#              state, logs and users added by a test land in the scratch directory and die with the lab;
#   /proc, /sys (this network namespace's), /dev (the host's devices), a tmpfs /tmp;
#   /run     = RUN, the machine's own (it holds /run/qubes-service/<service>, shared by all its processes);
#   SCRATCH  = the lab's scratch directory at the same path, for the lab's tools and logs.
# Then COMMAND runs chrooted there (the lab runs `sleep infinity`; every process of the machine enters this
# mount namespace and root with `nsenter -m -n -r -w`).
#
# usage: machine-view.sh NAME SCRATCH RUN LOWERS COMMAND [ARG...]
set -eu
name=$1 scratch=$2 run=$3 lowers=$4
shift 4
m="$scratch/machines/$name"
r="$m/root"
mkdir -p "$m/upper" "$m/work" "$r"
mount --make-rprivate /
mount -t overlay "qig-$name" -o "lowerdir=$lowers,upperdir=$m/upper,workdir=$m/work" "$r"
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev qig-tmp "$r/tmp"
mkdir -p "$r/run" "$r$scratch"
mount --bind "$run" "$r/run"
mount --bind "$scratch" "$r$scratch"
exec chroot "$r" "$@"
