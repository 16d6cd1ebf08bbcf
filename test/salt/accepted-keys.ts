/**
 * The keys each Salt state we use accepts, read from QubesOS/qubes-mgmt-salt-dom0-qvm (`_states/ext_state_qvm.py`,
 * `_modules/ext_module_qvm.py`: the argparse options of create/prefs/service/features/clone) and Salt's own
 * pkg.installed. A rendered state with any other key fails the tests: the real modules would refuse it, or
 * worse, ignore it.
 */
const REQUISITES = ['require', 'watch', 'onchanges', 'onfail', 'prereq', 'order'];

export const QVM_VM_ACTIONS = ['exists', 'running', 'missing', 'halted', 'absent', 'present', 'clone', 'prefs', 'devices', 'service', 'features', 'firewall', 'tags', 'unpause', 'pause', 'shutdown', 'kill', 'start', 'run'];

/** qvm-prefs properties, both spellings. */
export const PREFS_KEYS = [
  'autostart', 'debug', 'default-user', 'default-dispvm', 'devices-denied', 'management-dispvm', 'guivm', 'audiovm',
  'template-for-dispvms', 'dispvm-allowed', 'virt-mode', 'label', 'last-backup', 'include-in-backups', 'installed-by-rpm',
  'ip', 'kernel', 'kernelopts', 'mac', 'maxmem', 'memory', 'netvm', 'pci-strictreset', 'pcidevs', 'provides-network',
  'template', 'qrexec-timeout', 'updateable', 'vcpus',
].flatMap((k) => [k, k.replace(/-/g, '_')]);

/** Keys accepted inside each qvm.vm action. */
export const ACTION_KEYS: Record<string, readonly string[]> = {
  present: ['template', 'label', 'class', 'mem', 'vcpus', 'flags', 'root-move-from', 'root-copy-from'],
  prefs: PREFS_KEYS,
  service: ['enable', 'disable', 'default', 'list'],
  features: ['enable', 'disable', 'default', 'set', 'list'],
  clone: ['source', 'flags', 'path'],
};

/** Top-level argument keys of each state function. */
export const STATE_KEYS: Record<string, readonly string[]> = {
  'qvm.vm': ['name', 'actions', ...QVM_VM_ACTIONS, ...REQUISITES],
  'qvm.clone': ['name', 'source', 'flags', 'path', ...REQUISITES],
  'qvm.template_installed': ['name', 'fromrepo', 'pool', ...REQUISITES],
  'qvm.prefs': ['name', ...PREFS_KEYS, ...REQUISITES],
  'qvm.service': ['name', 'enable', 'disable', 'default', ...REQUISITES],
  'qvm.features': ['name', 'enable', 'disable', 'default', 'set', ...REQUISITES],
  'pkg.installed': ['name', 'pkgs', 'sources', 'refresh', 'version', 'fromrepo', 'skip_verify', 'install_recommends', ...REQUISITES],
  'file.managed': ['name', 'source', 'source_hash', 'mode', 'user', 'group', 'makedirs', 'contents', ...REQUISITES],
};

/** Requisite targets are `<state module>: <id>`. */
export const REQUISITE_MODULES = ['qvm', 'pkg', 'file', 'cmd'];
