# i2p-gateway.remove (dom0): take the gateway away again, in this order:
#   1. Clients back on their netvm from before sys-i2p (recorded by i2p-gateway.clients; else the system default).
#   2. sys-i2p shut down and removed (Qubes refuses while a qube still uses it as netvm).
#   3. debian-13-i2p removed (Qubes refuses while a qube is based on it); debian-13-minimal stays.
# Run: sudo qubesctl --show-output state.sls i2p-gateway.remove   (safe to run again; a failed step stops the later ones)
# Disable enabled tops first (sudo qubesctl top.disable i2p-gateway), or a later state.apply builds it all again.

i2p-gateway-remove-qube:
  qvm.vm:
    - name: sys-i2p
    - absent: []
i2p-gateway-remove-template:
  qvm.vm:
    - name: debian-13-i2p
    - absent: []
    - require:
        - qvm: i2p-gateway-remove-qube
