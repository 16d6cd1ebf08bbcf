#!/bin/bash
# Stand-in for Qubes' /usr/lib/qubes/init/bind-dirs.sh (vm-systemd/bind-dirs.sh, release4.3), the part the
# gateway uses: in a qube that is not fully persistent (a qube based on a template), source the snippets in
# /usr/lib/qubes-bind-dirs.d and /etc/qubes-bind-dirs.d, which add paths to `binds`; for each one, on first use
# copy it from the root to /rw/bind-dirs/<path> (cp --archive), then bind-mount /rw/bind-dirs/<path> onto it.
# Left out: symlink resolution, /rw/config snippets, custom-persist, /home and /usr/local special cases.
set -euo pipefail
shopt -s nullglob
[ -e /run/qubes/persistent-full ] && exit 0
binds=()
for f in /usr/lib/qubes-bind-dirs.d/*.conf /etc/qubes-bind-dirs.d/*.conf; do
	# shellcheck source=/dev/null
	source "$f"
done
for ro in "${binds[@]}"; do
	rw="/rw/bind-dirs$ro"
	if [ ! -e "$rw" ]; then
		[ -e "$ro" ] || continue
		mkdir -p "$(dirname "$rw")"
		cp --archive "$ro" "$rw"
		echo "bind-dirs stand-in: initialized $rw from $ro" >&2
	fi
	mount --bind "$rw" "$ro"
done
