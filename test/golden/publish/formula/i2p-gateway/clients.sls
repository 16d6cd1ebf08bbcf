# i2p-gateway.clients (dom0): point the client qubes' netvm at sys-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clients
# No client qubes are configured (qubes.clients): set a qube's netvm to the gateway by hand, or list it.

include:
  - i2p-gateway.create
