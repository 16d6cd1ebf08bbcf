# i2p-gateway.remove (dom0): take the gateway away again, in this order:
#   1. Clients back on their netvm from before sys-i2p (recorded by i2p-gateway.clients; none recorded: no netvm).
#   2. The published services' qrexec policy removed (/etc/qubes/policy.d/70-i2p-gateway-publish.policy): sys-i2p reaches no service qube.
#   3. sys-i2p shut down and removed (Qubes refuses while a qube still uses it as netvm).
#   4. debian-13-i2p removed (Qubes refuses while a qube is based on it); debian-13-minimal stays.
# Run: sudo qubesctl --show-output state.sls i2p-gateway.remove   (safe to run again; a failed step stops the later ones)
# Disable enabled tops first (sudo qubesctl top.disable i2p-gateway), or a later state.apply builds it all again.

i2p-gateway-remove-publish-policy:
  file.absent:
    - name: /etc/qubes/policy.d/70-i2p-gateway-publish.policy
i2p-gateway-remove-qube:
  qvm.vm:
    - name: sys-i2p
    - absent: []
    - require:
        - file: i2p-gateway-remove-publish-policy
i2p-gateway-remove-template:
  qvm.vm:
    - name: debian-13-i2p
    - absent: []
    - require:
        - qvm: i2p-gateway-remove-qube
