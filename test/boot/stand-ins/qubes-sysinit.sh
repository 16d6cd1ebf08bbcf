#!/bin/sh
# Stand-in for Qubes' qubes-sysinit.sh: what it derives from qubesdb, from the test's /etc/qig-stand-ins/qubesdb
# (shell assignments: QUBES_VM_TYPE, QUBES_VM_PERSISTENCE, QUBES_SERVICES). Leaves out Xen, SELinux, the
# default-service lists per qube type (the test lists every service it means) and the environment file.
set -eu
. /etc/qig-stand-ins/qubesdb
mkdir -p /run/qubes /run/qubes-service
case "$QUBES_VM_TYPE" in
AppVM) touch /run/qubes/this-is-appvm ;;
TemplateVM) touch /run/qubes/this-is-templatevm ;;
*) echo "Bad VM type $QUBES_VM_TYPE" >&2; exit 1 ;;
esac
case "$QUBES_VM_PERSISTENCE" in
full | rw-only | none) touch "/run/qubes/persistent-$QUBES_VM_PERSISTENCE" ;;
*) echo "Bad VM persistence $QUBES_VM_PERSISTENCE" >&2; exit 1 ;;
esac
for srv in $QUBES_SERVICES; do
	touch "/run/qubes-service/$srv"
done
