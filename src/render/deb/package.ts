/**
 * The template package `qubes-i2p-gateway`: the gateway's runtime files (src/render/gateway/) plus what makes
 * them a Debian package: control metadata, maintainer scripts and copyright (from debian/), the changelog.
 *
 * Depends, and why:
 * - tor, only when tor.enabled: with Tor off nothing of ours runs it, so the template need not carry it.
 * - python3: it runs `qubes-i2p-gateway status` (status.ts) and, Tor on, our DNS TCP relay (dns-relay.ts).
 *   Debian templates carry python3 already; the dependency says so rather than assume it.
 * - tinyproxy: the binary our unit runs and the `tinyproxy` user it runs as (tinyproxy-bin alone does not
 *   create that user); its own service is kept quiet by our drop-in.
 * - dnsmasq-base: the binary and the dnsmasq user, without the `dnsmasq` package's service that starts
 *   everywhere.
 * - nftables: the hook and the lockdown unit run nft.
 * - i2pd, for router i2pd. Not i2p for the Java router: it comes from the I2P repository this package adds,
 *   so Salt installs it after this package is in.
 * - qubes-core-agent-networking: qubes-firewall.service, which runs our hook, and the `ip qubes` tables.
 * - qubes-core-qrexec, only with published services (config `publish`): qrexec-client-vm, which carries each
 *   visitor's connection to the service qube. Every Qubes template has it; the dependency says so.
 */
import type { GatewayConfig } from '../../config/schema.ts';
import { ROUTERS } from '../../config/routers.ts';
import { binaryFile, mergeTrees, textFile, type RenderedFile } from '../../files.ts';
import type { DebMeta } from '../../pack/deb.ts';
import { gzip } from '../../pack/gzip.ts';
import { PACKAGE } from '../gateway/common.ts';
import { renderGateway, type GatewayPrograms } from '../gateway/index.ts';
import { renderChangelog } from './changelog.ts';

/** The package's static parts, kept as plain files under debian/ and gateway/ (read by src/io/static.ts). */
export interface DebStatics {
  readonly postinst: string;
  readonly postrm: string;
  /** DEP-5 copyright, installed as /usr/share/doc/<package>/copyright. */
  readonly copyright: string;
  /** The programs that run in the gateway (gateway/). */
  readonly programs: GatewayPrograms;
}

export interface DebPackageOptions {
  /** The I2P repository keyring (router i2p only), already read from disk. */
  readonly keyring?: Uint8Array;
  /** SOURCE_DATE_EPOCH: dates the changelog entry. */
  readonly sourceDateEpoch: number;
  /** Maintainer scripts and copyright, from debian/. */
  readonly statics: DebStatics;
  /** The package version (src/version.ts, which the build passes); package.version alone when not given. */
  readonly version?: string;
  /**
   * The gateway's runtime files, when the caller has rendered them already (the build does, for the version's
   * digest): the same renderGateway output this would make, so it is not made twice.
   */
  readonly gatewayFiles?: readonly RenderedFile[];
}

export interface DebPackage {
  readonly meta: DebMeta;
  readonly files: RenderedFile[];
}

const DOC_DIR = `/usr/share/doc/${PACKAGE}`;
const LINTIAN_OVERRIDES = `/usr/share/lintian/overrides/${PACKAGE}`;

export function debDepends(config: GatewayConfig): string[] {
  return [
    ...(config.tor.enabled ? ['tor'] : []),
    'python3',
    'tinyproxy',
    'dnsmasq-base',
    'nftables',
    ...(ROUTERS[config.i2p.router].fromI2pRepo ? [] : [ROUTERS[config.i2p.router].package]),
    'qubes-core-agent-networking',
    ...(config.publish.length > 0 ? ['qubes-core-qrexec'] : []),
  ];
}

/** Fill words into lines of at most `width` characters (lintian wants extended lines within 80). */
export function wrap(text: string, width = 79): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

function description(config: GatewayConfig): DebMeta['description'] {
  const router = config.i2p.router === 'i2pd' ? 'i2pd' : 'the Java I2P router (from the I2P repository)';
  const rest = config.tor.enabled ? 'and everything else through Tor (TCP and DNS).' : 'and nothing else (Tor is off).';
  return {
    summary: 'transparent I2P and Tor gateway for Qubes OS client qubes',
    extended: [
      ...wrap(
        'Runtime files for a Qubes OS 4.3 network-providing qube. Client qubes that use it as their netvm reach ' +
          `.i2p sites over plain HTTP through tinyproxy and ${router}, ${rest} Nothing is forwarded in the clear.`,
      ),
      '',
      ...wrap(
        `Everything runs only in the qube whose qvm-service "${config.qubes.service}" is enabled; the template and ` +
          'other qubes built from it are unaffected. Built by qubes-i2p-gateway from a YAML config.',
      ),
    ],
  };
}

/**
 * lintian overrides, each with its reason in the file:
 * - package-installs-apt-sources (router i2p): lintian's tag for a package that is not named *-apt-source but
 *   installs an apt source. Splitting the source into its own package would add a second .deb to build and install
 *   for one small file; the source is here by design, pinned to one key by Signed-By.
 *
 * There is no prerm: the package's removal changes nothing other packages own (piuparts checks that). The
 * distribution's daemons our drop-ins keep quiet are disabled in the template by the formula's install.sls.
 */
function lintianOverrides(config: GatewayConfig): RenderedFile[] {
  const lines: string[] = [];
  if (ROUTERS[config.i2p.router].fromI2pRepo) {
    lines.push(
      '# The I2P repository is the only source of the Java router this gateway runs; shipping its deb822 source',
      '# (pinned to the I2P key by Signed-By) here keeps the gateway one package instead of two.',
      `${PACKAGE}: package-installs-apt-sources [etc/apt/sources.list.d/i2p.sources]`,
    );
  }
  return lines.length === 0 ? [] : [textFile(LINTIAN_OVERRIDES, `${lines.join('\n')}\n`)];
}

export function renderDebPackage(config: GatewayConfig, opts: DebPackageOptions): DebPackage {
  const { statics } = opts;
  const version = opts.version ?? config.package.version;
  const changelog = renderChangelog({
    package: PACKAGE,
    version,
    maintainer: config.package.maintainer,
    sourceDateEpoch: opts.sourceDateEpoch,
    changes: [`Generated by qubes-i2p-gateway from its YAML config (router ${config.i2p.router}, Tor ${config.tor.enabled ? 'on' : 'off'}).`],
  });
  const programs = statics.programs;
  const gateway = opts.gatewayFiles ?? renderGateway(config, opts.keyring === undefined ? { programs } : { programs, keyring: opts.keyring });
  const files = mergeTrees(
    gateway,
    [textFile(`${DOC_DIR}/copyright`, statics.copyright), binaryFile(`${DOC_DIR}/changelog.gz`, gzip(new TextEncoder().encode(changelog)))],
    lintianOverrides(config),
  );
  const meta: DebMeta = {
    package: PACKAGE,
    version,
    architecture: 'all',
    maintainer: config.package.maintainer,
    section: 'net',
    priority: 'optional',
    depends: debDepends(config),
    description: description(config),
    scripts: { postinst: statics.postinst, postrm: statics.postrm },
  };
  return { meta, files };
}
