# i2p-gateway.clients (dom0): point the client qubes' netvm at sys-i2p.
# Run: sudo qubesctl state.sls i2p-gateway.clients
# Clients: work, untrusted, personal.
# If any of them runs, sys-i2p is started first: Qubes cannot attach a running qube to a halted netvm.
# Each client's netvm from before is kept in its feature i2p-gateway.previous-netvm, for i2p-gateway.remove.
# Each client's qvm-firewall gets a first rule "drop" (comment qubes-i2p-gateway-fail-closed): sys-i2p with
# the gateway package never forwards, so the rule never applies; without the package it drops instead of routing.

include:
  - i2p-gateway.create
i2p-gateway-start-for-clients:
  qvm.vm:
    - name: sys-i2p
    - start: []
    - onlyif: qvm-check --running work || qvm-check --running untrusted || qvm-check --running personal
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-work-previous-netvm:
  cmd.script:
    - name: client-netvm record work sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-work-fail-closed:
  cmd.script:
    - name: client-netvm close work sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-work:
  qvm.prefs:
    - name: work
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-start-for-clients
        - cmd: i2p-gateway-client-work-previous-netvm
        - cmd: i2p-gateway-client-work-fail-closed
i2p-gateway-client-untrusted-previous-netvm:
  cmd.script:
    - name: client-netvm record untrusted sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-untrusted-fail-closed:
  cmd.script:
    - name: client-netvm close untrusted sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-untrusted:
  qvm.prefs:
    - name: untrusted
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-start-for-clients
        - cmd: i2p-gateway-client-untrusted-previous-netvm
        - cmd: i2p-gateway-client-untrusted-fail-closed
i2p-gateway-client-personal-previous-netvm:
  cmd.script:
    - name: client-netvm record personal sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-personal-fail-closed:
  cmd.script:
    - name: client-netvm close personal sys-i2p
    - source: salt://i2p-gateway/files/client-netvm
    - stateful: true
    - require:
        - qvm: i2p-gateway-qube
i2p-gateway-client-personal:
  qvm.prefs:
    - name: personal
    - netvm: sys-i2p
    - require:
        - qvm: i2p-gateway-start-for-clients
        - cmd: i2p-gateway-client-personal-previous-netvm
        - cmd: i2p-gateway-client-personal-fail-closed
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
