/**
 * Guards for every value a gateway renderer interpolates into a shell script, an nft ruleset, a unit or a
 * daemon config. The config is validated by the schema before it gets here; these re-check at the point of use
 * (a renderer may be handed an object that never went through the loader) and return the value as text, so
 * a string that could break out of its place never reaches a generated file.
 */
import { Cidr, IPv4, Port, PublishName, QubeName, ServiceName } from '../../config/schema.ts';

function check<T>(what: string, value: unknown, parse: (v: unknown) => { success: boolean; data?: T }): T {
  const r = parse(value);
  if (!r.success || r.data === undefined) {
    throw new Error(`render: ${what} ${JSON.stringify(value)} is not valid here (the config loader should have refused it)`);
  }
  return r.data;
}

export function port(value: number): string {
  return String(check('port', value, (v) => Port.safeParse(v)));
}

export function ipv4(value: string): string {
  return check('IPv4 address', value, (v) => IPv4.safeParse(v));
}

export function cidr(value: string): string {
  return check('IPv4 network', value, (v) => Cidr.safeParse(v));
}

export function serviceName(value: string): string {
  return check('qvm-service name', value, (v) => ServiceName.safeParse(v));
}

/** A system user name as Debian creates them (debian-tor, i2pd, i2psvc, tinyproxy, dnsmasq). */
export function userName(value: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(value)) throw new Error(`render: user name ${JSON.stringify(value)} is not valid here`);
  return value;
}

/** A published service's name (units, an i2pd section, a torrc path): letters, digits and "-" only. */
export function publishName(value: string): string {
  return check('published service name', value, (v) => PublishName.safeParse(v));
}

/** A qube name as qrexec and qrexec-client-vm take it (letters, digits, "-", "_", "."). */
export function qubeName(value: string): string {
  return check('qube name', value, (v) => QubeName.safeParse(v));
}
