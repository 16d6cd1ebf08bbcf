#!/bin/sh
# Makes this machine a fresh one for the gateway's daemons, and proves it: no tor, i2pd, tinyproxy, dnsmasq or
# nftables package and none of their users. The tests must take every daemon, user and file of the gateway from
# the Debian 13 roots they make (test/util/chroot.ts, trixie.ts), never from the host: a test that reads the host's
# /etc/passwd, or runs a host's tor, passes on a machine that once had them and fails on a new one. .ci/run runs
# `purge` before test/oracles.sh and `check` after it (so nothing oracles.sh installs brings them back).
#
# usage (root): sh test/fresh-host.sh purge|check
set -eu
PACKAGES="tor i2pd tinyproxy dnsmasq dnsmasq-base nftables"
USERS="debian-tor i2pd tinyproxy"

# Packages of the list dpkg knows in any state but "not installed" (config files left count: a purge removes them).
present_packages() {
  for p in $PACKAGES; do
    s=$(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case $s in '' | un*) ;; *) printf '%s ' "$p" ;; esac
  done
}

present_accounts() {
  for u in $USERS; do
    if getent passwd "$u" >/dev/null; then printf 'user:%s ' "$u"; fi
    if getent group "$u" >/dev/null; then printf 'group:%s ' "$u"; fi
  done
}

case ${1:-} in
purge)
  pkgs=$(present_packages)
  if [ -n "$pkgs" ]; then
    echo "fresh host: purging $pkgs"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $pkgs >/dev/null
  fi
  for u in $USERS; do
    if getent passwd "$u" >/dev/null; then echo "fresh host: deleting user $u"; userdel "$u"; fi
    if getent group "$u" >/dev/null; then echo "fresh host: deleting group $u"; groupdel "$u"; fi
  done
  ;;
check)
  pkgs=$(present_packages)
  accounts=$(present_accounts)
  if [ -n "$pkgs$accounts" ]; then
    echo "fresh host: FAILED: this machine still has ${pkgs}${accounts}" >&2
    echo "fresh host: the tests must run on a machine without them (sh test/fresh-host.sh purge)" >&2
    exit 1
  fi
  echo "fresh host: none of the packages $PACKAGES, none of the users or groups $USERS"
  ;;
*)
  echo "usage: sh test/fresh-host.sh purge|check" >&2
  exit 2
  ;;
esac
