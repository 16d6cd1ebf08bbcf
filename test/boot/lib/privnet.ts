/**
 * What the boot suites on the lab's private networks share (issue 21): a template with the package as install.sls
 * puts it there, the private I2P and Tor networks started in the booted lab's up, the one small file per daemon
 * (plus the I2P seeds) that makes a gateway qube of that template join them, and polling.
 *
 * Used by test/boot/privnet.test.ts (a client loads an eepsite, a clearnet page and an onion site) and
 * test/boot/publish-privnet.test.ts (a service qube's site published through `publish`, loaded from clients of two
 * gateways).
 */
import { PATHS } from '../../../src/render/gateway/common.ts';
import { gatewayI2pdDropIn, gatewaySeedFiles, I2pNet } from '../../net/lib/i2pnet.ts';
import type { Lab } from '../../net/lib/lab.ts';
import { sleep } from '../../net/lib/sh.ts';
import { gatewayTorrc, TorNet } from '../../net/lib/torenet.ts';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../../util/chroot.ts';
import { Machine } from './machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './qubes.ts';
import { applyState, downloadFor, installDummy, stageFormula, type Release } from './template.ts';

export interface InstalledTemplate {
  /** The pristine Debian 13 root (the template's lowest layer). */
  readonly pristine: string;
  /** The template's changes (its upper layer, unmounted): a qube boots from [template.upper, pristine]. */
  readonly template: Overlay;
}

export interface TemplateOptions {
  /** Machine name of the template's boot. */
  readonly name: string;
  readonly log: (msg: string) => void;
  /** Commands in the booted template before install.sls runs (a group a Qubes package creates, say). */
  readonly inside?: (tm: Machine) => Promise<void>;
}

/** A template into which install.sls put the release (downloads first, then the states offline), powered off. */
export async function installedTemplate(release: Release, opts: TemplateOptions): Promise<InstalledTemplate> {
  const install = 'i2p-gateway.install';
  const pristine = await ensurePristine(opts.log);
  await downloadFor(pristine, release, install, opts.log);
  const template = await makeOverlay([pristine]);
  try {
    await writeAptSources(template.root);
    installCoreAgentStandIns(template.root);
    writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
    stageFormula(template.root, release);
    const tm = await Machine.boot(template, { name: opts.name, network: { kind: 'private' }, binds: await aptCacheDirs(), log: opts.log });
    try {
      await opts.inside?.(tm);
      await installDummy(tm, release);
      await applyState(tm, release, install, opts.log);
      await tm.poweroff();
    } finally {
      await tm.kill();
    }
    await template.unmount();
  } catch (e) {
    await template.dispose();
    throw e;
  }
  return { pristine, template };
}

export interface PrivateNets {
  readonly i2p: I2pNet;
  readonly tor: TorNet;
}

/** Both private networks in the lab's up (generous bounds: the machine is shared). Stop them with stopPrivateNets. */
export async function startPrivateNets(lab: Lab, log: (msg: string) => void): Promise<PrivateNets> {
  const i2p = await I2pNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 60_000 });
  try {
    const tor = await TorNet.start({ ns: lab.ns.up, scratch: lab.scratch, root: lab.root, startTimeoutMs: 150_000, attempts: 2, log });
    log(`networks up: i2p ${i2p.routers.length} routers, tor bootstrapped in ${tor.bootstrapMs} ms`);
    return { i2p, tor };
  } catch (e) {
    await i2p.stop();
    throw e;
  }
}

export async function stopPrivateNets(nets: Partial<PrivateNets> | undefined): Promise<void> {
  await nets?.tor?.stop();
  await nets?.i2p?.stop();
}

/**
 * What a gateway qube's root gets to join both networks, as [path inside, contents] (bootGateway's edits): the i2pd
 * drop-in (private network's options, seeds copied into its netDb), the seeds, and Tor's torrc.d file.
 */
export function privateNetEdits(nets: PrivateNets): Array<readonly [string, string | Uint8Array]> {
  return [
    ['/etc/systemd/system/i2pd.service.d/zz-lab-privnet.conf', gatewayI2pdDropIn(PATHS.i2pdRuntimeConf, true)],
    ...gatewaySeedFiles(nets.i2p),
    [`${PATHS.torrcD}/lab-privnet.conf`, gatewayTorrc(nets.tor.dirAuthorities)],
  ];
}

/** Call `f` every second until `ok` holds or `ms` passed; the last result and the time taken. */
export async function until<T>(f: () => Promise<T>, ok: (t: T) => boolean, ms: number): Promise<{ last: T; took: number }> {
  const t0 = Date.now();
  let last = await f();
  while (!ok(last) && Date.now() - t0 < ms) {
    await sleep(1000);
    last = await f();
  }
  return { last, took: Date.now() - t0 };
}
