# i2p-gateway.unpublish (dom0): remove the qrexec policy of the published services, so sys-i2p reaches no
# service qube any more (the gateway's listeners then find every call refused).
# Run: sudo qubesctl state.sls i2p-gateway.unpublish

i2p-gateway-publish-policy-absent:
  file.absent:
    - name: /etc/qubes/policy.d/70-i2p-gateway-publish.policy
