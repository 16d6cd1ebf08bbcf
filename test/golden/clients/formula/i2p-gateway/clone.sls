# i2p-gateway.clone (dom0): install debian-12-minimal if missing and clone it to debian-12-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clone
# Both states skip when their qube already exists, so a second run changes nothing.

i2p-gateway-source-template:
  qvm.template_installed:
    - name: debian-12-minimal
i2p-gateway-template:
  qvm.clone:
    - name: debian-12-i2p
    - source: debian-12-minimal
    - require:
        - qvm: i2p-gateway-source-template
