# i2p-gateway.clients (dom0): point the client qubes' netvm at sys-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clients
# Clients: work, untrusted, personal.

include:
  - i2p-gateway.create
i2p-gateway-client-work:
  qvm.prefs:
    - name: work
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-untrusted:
  qvm.prefs:
    - name: untrusted
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-personal:
  qvm.prefs:
    - name: personal
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-qube
