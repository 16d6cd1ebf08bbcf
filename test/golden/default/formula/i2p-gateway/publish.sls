# i2p-gateway.publish (dom0): the qrexec policy that lets sys-i2p reach its published services.
# Run: sudo qubesctl state.sls i2p-gateway.publish
# Nothing is published (config `publish` is empty): the policy file is removed if it exists.

include:
  - i2p-gateway.unpublish
