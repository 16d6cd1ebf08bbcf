#!/bin/sh
# Stand-in for qubes-firewall's run_firewall_dir(): every regular, executable file in /etc/qubes/qubes-firewall.d
# (links followed), in name order, each run like subprocess.call(): its exit status is ignored, as the real
# daemon ignores it.
set -u
dir=/etc/qubes/qubes-firewall.d
[ -d "$dir" ] || exit 0
for hook in "$dir"/*; do
	[ -f "$hook" ] && [ -x "$hook" ] || continue
	"$hook" || echo "qubes-firewall stand-in: $hook exited $?" >&2
done
exit 0
