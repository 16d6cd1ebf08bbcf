/** Names shared by the formula's files: the formula folder, its states, and the ids states require. */
export const FORMULA = 'i2p-gateway';
/** Where the RPM puts the formula in dom0 (Qubes' formula convention). */
export const FORMULA_ROOT = '/srv/formulas/base/i2p-gateway-formula';
export const MINION_CONF = '/etc/salt/minion.d/i2p-gateway-formula.conf';
/** Where install.sls expects the template package inside the formula. */
export const FILES_DIR = `${FORMULA}/files`;

export const STATE = {
  clone: `${FORMULA}.clone`,
  install: `${FORMULA}.install`,
  create: `${FORMULA}.create`,
  clients: `${FORMULA}.clients`,
  remove: `${FORMULA}.remove`,
  publish: `${FORMULA}.publish`,
  unpublish: `${FORMULA}.unpublish`,
} as const;

/** The dom0 script (salt/client-netvm) in the formula, and how states name it. */
export const CLIENT_NETVM = {
  path: `${FILES_DIR}/client-netvm`,
  source: `salt://${FILES_DIR}/client-netvm`,
  /** The client qube's feature that holds its netvm from before the gateway (the script's FEATURE). */
  feature: `${FORMULA}.previous-netvm`,
} as const;

/**
 * dom0's qrexec policy file for the published services (Qubes 4.x format, /etc/qubes/policy.d). Files are read in
 * "C" order and the first matching line wins: 70- is where qrexec's documentation puts a package's allow rules,
 * after the admin's own 30-user.policy (which can deny them) and before 90-default.policy, which denies every
 * other qubes.ConnectTCP.
 */
export const PUBLISH_POLICY = '/etc/qubes/policy.d/70-i2p-gateway-publish.policy';

/** State ids (unique across the formula, since states include each other). */
export const ID = {
  sourceTemplate: 'i2p-gateway-source-template',
  template: 'i2p-gateway-template',
  /** install.sls: the runtime drop-in that holds a distribution unit off while the dependencies install. */
  hold: (unit: string): string => `i2p-gateway-hold-${unit.replace(/\.service$/, '').replace(/[^A-Za-z0-9-]/g, '-')}`,
  dependencies: 'i2p-gateway-dependencies',
  package: 'i2p-gateway-package',
  packageVersion: 'i2p-gateway-package-version',
  restartNotice: 'i2p-gateway-restart-notice',
  router: 'i2p-gateway-java-router',
  /** install.sls: a distribution daemon's unit disabled in the template (its package's postinst enabled it). */
  disabled: (unit: string): string => `i2p-gateway-disable-${unit.replace(/\.service$/, '').replace(/[^A-Za-z0-9-]/g, '-')}`,
  otherRouter: 'i2p-gateway-other-router',
  qube: 'i2p-gateway-qube',
  startForClients: 'i2p-gateway-start-for-clients',
  client: (name: string): string => `i2p-gateway-client-${name}`,
  clientRecord: (name: string): string => `i2p-gateway-client-${name}-previous-netvm`,
  clientRestore: (name: string): string => `i2p-gateway-remove-client-${name}`,
  /** clients.sls: the client's fail-closed qvm-firewall rule (salt/client-netvm close). */
  clientClosed: (name: string): string => `i2p-gateway-client-${name}-fail-closed`,
  /** clients.sls: the granted qube's address for an I2P application (SAM, I2CP) in the gateway's qubesdb, or none. */
  appGrant: (app: string): string => `i2p-gateway-app-${app}`,
  removeQube: 'i2p-gateway-remove-qube',
  removeTemplate: 'i2p-gateway-remove-template',
  publishPolicy: 'i2p-gateway-publish-policy',
  publishPolicyAbsent: 'i2p-gateway-publish-policy-absent',
  /** publish.sls: a service qube's netvm set to none, before the policy lets the gateway reach it. */
  publishNoNetvm: (qube: string): string => `i2p-gateway-publish-${qube}-no-netvm`,
  /** remove.sls's own id for the same file: remove.sls and unpublish.sls may run in one state.apply. */
  removePublishPolicy: 'i2p-gateway-remove-publish-policy',
} as const;
