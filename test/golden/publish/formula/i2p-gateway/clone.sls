# i2p-gateway.clone (dom0): install debian-13-minimal if missing and clone it to debian-13-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clone
# Both states skip when their qube already exists, so a second run changes nothing.

i2p-gateway-source-template:
  qvm.template_installed:
    - name: debian-13-minimal
i2p-gateway-template:
  qvm.clone:
    - name: debian-13-i2p
    - source: debian-13-minimal
    - require:
        - qvm: i2p-gateway-source-template
