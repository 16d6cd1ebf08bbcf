/**
 * qubes.clients as written may hold objects, `{ name: work, apps: [sam] }`; `apps` there is the same grant as listing
 * the qube under i2p.apps.<APP>. `normalizeClients` turns the written config into the one every rule and renderer
 * sees: qubes.clients as names, i2p.apps.<APP> as lists with the objects' grants merged in (after the lists' own
 * entries, in the order of qubes.clients). `Written` remembers where each name and grant stood in the file, so the
 * cross-field rules (rules.ts) point at what the user wrote. Pure.
 */
import { I2P_APPS, type GatewayConfig, type I2pApp, type WrittenConfig } from './schema.ts';

export type ConfigPath = readonly (string | number)[];

/** Where the normalized config's names were written. */
export interface Written {
  /** The path of qubes.clients.<i>'s name: the entry itself, or the object's `name`. */
  client(i: number): ConfigPath;
  /** The path of the i-th qube of the normalized i2p.apps.<app>: i2p.apps.<app>.<j>, or qubes.clients.<k>.apps.<m>. */
  grant(app: I2pApp, i: number): ConfigPath;
  /** Whether the user wrote any qube under i2p.apps.<app> itself. */
  listed(app: I2pApp): boolean;
}

/** For a config that was not written with client objects: every path is the normalized one. */
export const AS_NORMALIZED: Written = {
  client: (i) => ['qubes', 'clients', i],
  grant: (app, i) => ['i2p', 'apps', app, i],
  listed: () => true,
};

export function normalizeClients(written: WrittenConfig): { readonly config: GatewayConfig; readonly written: Written } {
  const names: string[] = [];
  const namePaths: ConfigPath[] = [];
  const apps = {} as Record<I2pApp, string[]>;
  const grantPaths = {} as Record<I2pApp, ConfigPath[]>;
  for (const app of I2P_APPS) {
    apps[app] = [...written.i2p.apps[app]];
    grantPaths[app] = apps[app].map((_q, j) => ['i2p', 'apps', app, j]);
  }
  written.qubes.clients.forEach((entry, k) => {
    if (typeof entry === 'string') {
      names.push(entry);
      namePaths.push(['qubes', 'clients', k]);
      return;
    }
    names.push(entry.name);
    namePaths.push(['qubes', 'clients', k, 'name']);
    entry.apps.forEach((app, m) => {
      apps[app].push(entry.name);
      grantPaths[app].push(['qubes', 'clients', k, 'apps', m]);
    });
  });
  // Spread, then replace: the keys keep their order (the version's digest hashes a canonical form anyway).
  const config: GatewayConfig = { ...written, qubes: { ...written.qubes, clients: names }, i2p: { ...written.i2p, apps } };
  return {
    config,
    written: {
      client: (i) => namePaths[i] ?? ['qubes', 'clients', i],
      grant: (app, i) => grantPaths[app][i] ?? ['i2p', 'apps', app, i],
      listed: (app) => written.i2p.apps[app].length > 0,
    },
  };
}
