# i2p-gateway.clients (dom0): point the client qubes' netvm at sys-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clients
# No client qubes are configured (qubes.clients): set a qube's netvm to the gateway by hand, or list it.

include:
  - i2p-gateway.create
i2p-gateway-app-sam:
  cmd.script:
    - name: client-netvm revoke-sam - sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-app-i2cp:
  cmd.script:
    - name: client-netvm revoke-i2cp - sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-app-socks:
  cmd.script:
    - name: client-netvm revoke-socks - sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-app-irc:
  cmd.script:
    - name: client-netvm revoke-irc - sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
