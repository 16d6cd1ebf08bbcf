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
} as const;

/** The dom0 script (salt/client-netvm) in the formula, and how states name it. */
export const CLIENT_NETVM = {
  path: `${FILES_DIR}/client-netvm`,
  source: `salt://${FILES_DIR}/client-netvm`,
  /** The client qube's feature that holds its netvm from before the gateway (the script's FEATURE). */
  feature: `${FORMULA}.previous-netvm`,
} as const;

/** State ids (unique across the formula, since states include each other). */
export const ID = {
  sourceTemplate: 'i2p-gateway-source-template',
  template: 'i2p-gateway-template',
  dependencies: 'i2p-gateway-dependencies',
  package: 'i2p-gateway-package',
  packageVersion: 'i2p-gateway-package-version',
  restartNotice: 'i2p-gateway-restart-notice',
  router: 'i2p-gateway-java-router',
  otherRouter: 'i2p-gateway-other-router',
  qube: 'i2p-gateway-qube',
  startForClients: 'i2p-gateway-start-for-clients',
  client: (name: string): string => `i2p-gateway-client-${name}`,
  clientRecord: (name: string): string => `i2p-gateway-client-${name}-previous-netvm`,
  clientRestore: (name: string): string => `i2p-gateway-remove-client-${name}`,
  removeQube: 'i2p-gateway-remove-qube',
  removeTemplate: 'i2p-gateway-remove-template',
} as const;
