# i2p-gateway.create (dom0): create sys-i2p from debian-13-i2p, providing network, with qvm-service i2p.
# Run: sudo qubesctl state.sls i2p-gateway.create
# Install the package into debian-13-i2p (i2p-gateway.install) before you start sys-i2p.

include:
  - i2p-gateway.clone
i2p-gateway-qube:
  qvm.vm:
    - name: sys-i2p
    - present:
        - template: debian-13-i2p
        - label: purple
        - mem: 400
    - prefs:
        - template: debian-13-i2p
        - label: purple
        - memory: 400
        - maxmem: 1000
        - vcpus: 2
        - netvm: sys-firewall
        - provides-network: true
        - autostart: false
    - service:
        - enable:
            - i2p
    - features:
        - enable:
            - servicevm
    - require:
        - qvm: i2p-gateway-template
