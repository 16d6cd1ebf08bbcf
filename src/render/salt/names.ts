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
} as const;

/** State ids (unique across the formula, since states include each other). */
export const ID = {
  sourceTemplate: 'i2p-gateway-source-template',
  template: 'i2p-gateway-template',
  dependencies: 'i2p-gateway-dependencies',
  package: 'i2p-gateway-package',
  router: 'i2p-gateway-java-router',
  otherRouter: 'i2p-gateway-other-router',
  qube: 'i2p-gateway-qube',
  client: (name: string): string => `i2p-gateway-client-${name}`,
} as const;
