# i2p-gateway.install (template debian-13-i2p): install the gateway package into the template.
# Run: sudo qubesctl --skip-dom0 --targets=debian-13-i2p state.sls i2p-gateway.install
# Nothing in the package runs in the template: every unit waits for the qube's qvm-service. The
# dependencies' daemons are held off while they install (drop-ins under /run, gone at the next boot),
# then disabled (tor.service, tinyproxy.service, i2pd.service): the gateway starts them itself, and none starts anywhere once the package is removed.
# i2p-gateway-package-version fails the run unless qubes-i2p-gateway 0.1.0+20231114221320.20231114221320.0a1b2c3d is what is installed.
# After a change, i2p-gateway-restart-notice says to restart sys-i2p, which keeps its old files until then.

i2p-gateway-hold-i2pd:
  file.managed:
    - name: /run/systemd/system/i2pd.service.d/10-qubes-i2p-gateway-install.conf
    - contents: |
        # qubes-i2p-gateway (i2p-gateway.install): i2pd.service starts only where /run/qubes-service/i2p exists.
        # Written before apt installs its package, whose postinst would start it at once; gone at the next boot,
        # when the package's own drop-in says the same.
        [Unit]
        ConditionPathExists=/run/qubes-service/i2p
    - mode: '0644'
    - makedirs: true
i2p-gateway-hold-tor:
  file.managed:
    - name: /run/systemd/system/tor.service.d/10-qubes-i2p-gateway-install.conf
    - contents: |
        # qubes-i2p-gateway (i2p-gateway.install): tor.service starts only where /run/qubes-service/tor exists.
        # Written before apt installs its package, whose postinst would start it at once; gone at the next boot,
        # when the package's own drop-in says the same.
        [Unit]
        ConditionPathExists=/run/qubes-service/tor
    - mode: '0644'
    - makedirs: true
i2p-gateway-hold-tor-default:
  file.managed:
    - name: /run/systemd/system/tor@default.service.d/10-qubes-i2p-gateway-install.conf
    - contents: |
        # qubes-i2p-gateway (i2p-gateway.install): tor@default.service starts only where /run/qubes-service/tor exists.
        # Written before apt installs its package, whose postinst would start it at once; gone at the next boot,
        # when the package's own drop-in says the same.
        [Unit]
        ConditionPathExists=/run/qubes-service/tor
    - mode: '0644'
    - makedirs: true
i2p-gateway-hold-tinyproxy:
  file.managed:
    - name: /run/systemd/system/tinyproxy.service.d/10-qubes-i2p-gateway-install.conf
    - contents: |
        # qubes-i2p-gateway (i2p-gateway.install): tinyproxy.service starts only where /run/qubes-service/tinyproxy exists.
        # Written before apt installs its package, whose postinst would start it at once; gone at the next boot,
        # when the package's own drop-in says the same.
        [Unit]
        ConditionPathExists=/run/qubes-service/tinyproxy
    - mode: '0644'
    - makedirs: true
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
    - require:
        - file: i2p-gateway-hold-i2pd
        - file: i2p-gateway-hold-tor
        - file: i2p-gateway-hold-tor-default
        - file: i2p-gateway-hold-tinyproxy
i2p-gateway-package:
  pkg.installed:
    - sources:
        - qubes-i2p-gateway: salt://i2p-gateway/files/qubes-i2p-gateway_0.1.0+20231114221320.20231114221320.0a1b2c3d_all.deb
    - require:
        - pkg: i2p-gateway-dependencies
i2p-gateway-package-version:
  pkg.installed:
    - pkgs:
        - qubes-i2p-gateway: 0.1.0+20231114221320.20231114221320.0a1b2c3d
    - refresh: false
    - require:
        - pkg: i2p-gateway-package
i2p-gateway-restart-notice:
  test.show_notification:
    - text: 'qubes-i2p-gateway 0.1.0+20231114221320.20231114221320.0a1b2c3d is installed in debian-13-i2p. A running sys-i2p keeps the gateway files it started with: restart it to use the new ones, once debian-13-i2p has shut down (qubesctl shuts it down after applying, if it was not running before). In dom0: qvm-shutdown --wait --force sys-i2p && qvm-start sys-i2p. Its client qubes have no network meanwhile (the gateway fails closed) and are reconnected when it is back.'
    - onchanges:
        - pkg: i2p-gateway-package
i2p-gateway-disable-tor:
  service.disabled:
    - name: tor.service
    - require:
        - pkg: i2p-gateway-dependencies
i2p-gateway-disable-tinyproxy:
  service.disabled:
    - name: tinyproxy.service
    - require:
        - pkg: i2p-gateway-dependencies
i2p-gateway-disable-i2pd:
  service.disabled:
    - name: i2pd.service
    - require:
        - pkg: i2p-gateway-dependencies
i2p-gateway-other-router:
  pkg.purged:
    - pkgs:
        - i2p
    - require:
        - pkg: i2p-gateway-package-version
