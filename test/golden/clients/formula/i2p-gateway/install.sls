# i2p-gateway.install (template debian-13-i2p): install the gateway package into the template.
# Run: sudo qubesctl --skip-dom0 --targets=debian-13-i2p state.sls i2p-gateway.install
# Nothing in the package runs in the template: every unit waits for the qube's qvm-service.

i2p-gateway-dependencies:
  pkg.installed:
    - pkgs:
        - tor
        - python3
        - tinyproxy
        - dnsmasq-base
        - nftables
        - i2pd
        - qubes-core-agent-networking
    - refresh: true
i2p-gateway-package:
  pkg.installed:
    - sources:
        - qubes-i2p-gateway: salt://i2p-gateway/files/qubes-i2p-gateway_0.1.0_all.deb
    - require:
        - pkg: i2p-gateway-dependencies
i2p-gateway-other-router:
  pkg.purged:
    - pkgs:
        - i2p
