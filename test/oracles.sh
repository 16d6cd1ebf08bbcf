#!/bin/sh
# Installs the Debian tools the tests use as oracles and runtime parts (the build itself needs none of them).
# Run as root on Debian (12 or 13). Used by .ci/run; newcomers run it once (see README). The daemons and tools the
# tests judge the gateway with come from a Debian 13 root the tests make themselves (test/util/chroot.ts); what is
# installed here is what runs on the host: the package writers' oracles (dpkg-deb, rpm), debootstrap, the lab's
# plumbing, the bench's load generators, and piuparts (the install suite runs the host's on a copy of the
# Debian 13 root).
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  dpkg-dev \
  rpm rpmlint cpio \
  iproute2 curl python3 \
  gnupg sqv \
  debootstrap piuparts \
  systemd systemd-container \
  wrk hyperfine diffoscope-minimal faketime \
  >/dev/null
echo "test oracles installed"
