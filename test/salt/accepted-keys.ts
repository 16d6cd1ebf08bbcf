/**
 * The keys each Salt state we use accepts, read from QubesOS/qubes-mgmt-salt-dom0-qvm, branch release4.3 at
 * a1182edb9d644fccf8247fe7581c5e71e083a8eb (tag v4.3.6, 2026-02-11; the newest branch and tag, and what main
 * points at): `_states/ext_state_qvm.py` (the state functions, the qvm.vm action list, template_installed's
 * parameters) and `_modules/ext_module_qvm.py` (the argparse options of create, prefs, service, features,
 * clone); and Salt's own pkg.installed, file.managed, cmd.script, service.disabled and test.show_notification. The module turns Salt keywords into argv by looking up
 * each argparse option among the keywords (qubes-mgmt-salt-base `_modules/module_utils.py`,
 * create_argv_list), so a keyword that matches no option is dropped without a word: a rendered state with a key
 * outside this table fails the tests because the real module would ignore it (or, for qvm.vm's top level,
 * refuse it: "Unknown action keyword").
 *
 * Since release4.2 (bc98abb, v4.2.1): qvm.prefs gained `devices-denied`/`devices_denied` (v4.3.6) and the
 * spelling `provides_network` (v4.3.5); qvm.check gained the flag `template`, which qvm.template_installed now
 * uses to decide whether the template is there (v4.3.3: "installed" = a qube of that name that is a
 * TemplateVM, no longer "installed by qvm-template"). No key was removed.
 */
/** Requisites and the global state arguments every state takes (Salt's STATE_REQUISITE/RUNTIME_KEYWORDS). */
const REQUISITES = ['require', 'watch', 'onchanges', 'onfail', 'prereq', 'order', 'onlyif', 'unless'];

export const QVM_VM_ACTIONS = ['exists', 'running', 'missing', 'halted', 'absent', 'present', 'clone', 'prefs', 'devices', 'service', 'features', 'firewall', 'tags', 'unpause', 'pause', 'shutdown', 'kill', 'start', 'run'];

/**
 * qvm.prefs properties: every option string of the module's `properties` group, exactly as it spells them (an
 * underscore spelling only where the module declares one: `dispvm_allowed`, for one, is not an option).
 */
export const PREFS_KEYS = [
  'autostart', 'debug', 'default-user', 'default_user', 'default-dispvm', 'default_dispvm', 'devices-denied',
  'devices_denied', 'management-dispvm', 'management_dispvm', 'guivm', 'audiovm', 'template-for-dispvms',
  'template_for_dispvms', 'dispvm-allowed', 'virt-mode', 'virt_mode', 'label', 'last-backup', 'last_backup',
  'include-in-backups', 'include_in_backups', 'installed-by-rpm', 'installed_by_rpm', 'ip', 'kernel', 'kernelopts',
  'mac', 'maxmem', 'memory', 'netvm', 'pci-strictreset', 'pci_strictreset', 'pcidevs', 'provides-network',
  'provides_network', 'template', 'qrexec-timeout', 'qrexec_timeout', 'updateable', 'vcpus',
];

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
  // template_installed(name, fromrepo=None, pool=None, **kwargs): fromrepo becomes qvm-template's --repoid.
  'qvm.template_installed': ['name', 'fromrepo', 'pool', ...REQUISITES],
  'qvm.prefs': ['name', ...PREFS_KEYS, ...REQUISITES],
  'qvm.service': ['name', 'enable', 'disable', 'default', 'list', ...REQUISITES],
  'qvm.features': ['name', 'enable', 'disable', 'default', 'set', 'list', ...REQUISITES],
  'pkg.installed': ['name', 'pkgs', 'sources', 'refresh', 'version', 'fromrepo', 'skip_verify', 'install_recommends', ...REQUISITES],
  'pkg.purged': ['name', 'pkgs', ...REQUISITES],
  'file.managed': ['name', 'source', 'source_hash', 'mode', 'user', 'group', 'makedirs', 'contents', 'contents_newline', ...REQUISITES],
  'file.absent': ['name', ...REQUISITES],
  // Salt's own (salt/states/cmd.py `script`, salt/states/test.py `show_notification`).
  'cmd.script': ['name', 'source', 'args', 'stateful', 'shell', 'env', 'cwd', 'runas', 'timeout', ...REQUISITES],
  'test.show_notification': ['name', 'text', ...REQUISITES],
  // salt/states/service.py `disabled(name, skip_verify=False, **kwargs)`.
  'service.disabled': ['name', 'skip_verify', ...REQUISITES],
};

/** Requisite targets are `<state module>: <id>`. */
export const REQUISITE_MODULES = ['qvm', 'pkg', 'file', 'cmd', 'test'];
