/**
 * `npm run test:boot`: a compromised i2pd against root's files, under the real systemd (issue 19.1).
 *
 * /var/lib/i2pd (i2pd's state, where the console password lives; under /rw through bind-dirs) and /run/i2pd (its
 * runtime directory, where the config i2pd runs with is written) belong to i2pd's user. That user deletes the
 * password file, plants links under the names the console program writes (the password's and the runtime config's
 * temporary names, or the password file itself) to root's files, and exits; Restart=always starts i2pd again, and
 * with it the drop-in's ExecStartPre. Root's files must stay as they were and root's, and nothing of them may reach
 * i2pd. test/net/root-files.test.ts proves the same with the lab's emulation of the unit; here systemd itself runs
 * the packaged drop-in, in a gateway booted from a template that install.sls made.
 *
 * First, in that template: the postinst's clean-up of router state (debian/postinst, clean_state: in every qube but
 * the gateway it removes what a daemon wrote into its state directory) meets links that i2pd's user planted there,
 * to a directory and a file of root's. It removes the links and never what they lead to.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import { CONSOLE_USER } from '../../src/render/gateway/i2pd.ts';
import { Lab } from '../net/lib/lab.ts';
import { run, sleep } from '../net/lib/sh.ts';
import { aptCacheDirs, ensurePristine, makeOverlay, writeAptSources, type Overlay } from '../util/chroot.ts';
import { bootGateway, gatewayServices, shutdown, uidIn, type GatewayQube } from './lib/gateway.ts';
import { Machine } from './lib/machine.ts';
import { installCoreAgentStandIns, writeQubesDb } from './lib/qubes.ts';
import { applyState, buildRelease, downloadFor, installDummy, stageFormula } from './lib/template.ts';

const log = (msg: string): void => console.log(`[boot] ${msg}`);
const RELEASE = buildRelease({ i2p: { clientDestinations: 'shared' } });
const I2PD = 'i2pd.service';
const TARGET = '/etc/qig-root-target';
const SECRET = '/etc/qig-root-secret';
/** Letters and digits only, 32 of them: a program taking it for the password would not refuse it. */
const SECRET_TEXT = 'RootOnlySecretRootOnlySecret0123';

let template: Overlay | undefined;
let tm: Machine | undefined;
let pristine = '';
let lab: Lab | undefined;
let gw: GatewayQube | undefined;

const M = (): Machine => {
  if (gw === undefined) throw new Error('the gateway is not booted');
  return gw.machine;
};

beforeAll(async () => {
  pristine = await ensurePristine(log);
  await downloadFor(pristine, RELEASE, 'i2p-gateway.install', log);
  template = await makeOverlay([pristine]);
  await writeAptSources(template.root);
  installCoreAgentStandIns(template.root);
  writeQubesDb(template.root, { type: 'TemplateVM', persistence: 'full', services: [] });
  stageFormula(template.root, RELEASE);
  tm = await Machine.boot(template, { name: 'qig-rootfiles-template', network: { kind: 'private' }, binds: await aptCacheDirs(), log });
  await installDummy(tm);
  await applyState(tm, RELEASE, 'i2p-gateway.install', log);
});

afterAll(async () => {
  await tm?.kill();
  await shutdown(gw);
  await lab?.destroy();
  await template?.dispose();
});

/** As i2pd's user inside the gateway (what a compromised i2pd may do). */
async function asI2pd(script: string): Promise<void> {
  await M().must(['setpriv', '--reuid=i2pd', '--regid=i2pd', '--init-groups', 'sh', '-c', script]);
}

async function fingerprint(path: string): Promise<string> {
  return (await M().must(['sh', '-c', 'stat -c "%U:%G %a %s" "$1" && sha256sum <"$1"', 'sh', path])).stdout.trim();
}

/** i2pd exits (as a compromised router would, or the console's "terminate"), and systemd's Restart=always runs the
 * unit again after RestartSec: its ExecStartPre first. Resolves once systemd has started it again and that start
 * has left ExecStartPre (running, or failed and waiting for the next restart). */
async function exitAndRestart(): Promise<void> {
  const s0 = await M().show(I2PD, ['MainPID', 'NRestarts']);
  const pid = Number(s0.get('MainPID'));
  expect(pid, 'i2pd runs').toBeGreaterThan(0);
  await M().must(['sh', '-c', 'kill -KILL "$1"', 'sh', String(pid)]);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const s = await M().show(I2PD, ['NRestarts', 'SubState']);
    if (Number(s.get('NRestarts')) > Number(s0.get('NRestarts')) && s.get('SubState') !== 'start-pre') return;
    await sleep(100);
  }
  throw new Error(`systemd did not restart i2pd\n${await journal()}`);
}

async function journal(): Promise<string> {
  const r = await M().exec(['journalctl', '-q', '-u', I2PD, '-o', 'short-monotonic', '--no-pager']);
  const show = await M().exec(['systemctl', 'show', I2PD, '-p', 'NRestarts', '-p', 'ActiveState', '-p', 'SubState', '-p', 'Result']);
  return `${show.stdout}${r.stdout.split('\n').slice(-60).join('\n')}`;
}

async function consoleStatus(pass: string): Promise<string> {
  if (lab === undefined) throw new Error('no lab');
  const r = await run(['ip', 'netns', 'exec', lab.ns.gw, 'curl', '-s', '-m', '2', '-o', '/dev/null', '-w', '%{http_code}', '-u', `${CONSOLE_USER}:${pass}`, 'http://127.0.0.1:7070/'], { timeoutMs: 5000 });
  return r.stdout;
}

async function waitActive(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await M().show(I2PD, ['ActiveState'])).get('ActiveState') === 'active' && (await consoleStatus('x')) === '401') return;
    await sleep(200);
  }
  throw new Error(`i2pd did not come back with its console\n${await journal()}`);
}

describe('the postinst in the template: links planted in a router\'s state directory', () => {
  it('removes the links, never what they lead to', async () => {
    if (tm === undefined) throw new Error('no template');
    const t = tm;
    await t.must(['sh', '-c', 'mkdir -p /etc/qig-clean-dir && echo keep >/etc/qig-clean-dir/file && echo keep >/etc/qig-clean-file']);
    await t.must(['setpriv', '--reuid=i2pd', '--regid=i2pd', '--init-groups', 'sh', '-c',
      'ln -s /etc/qig-clean-dir /var/lib/i2pd/dir-link && ln -s /etc/qig-clean-file /var/lib/i2pd/file-link && mkdir /var/lib/i2pd/sub && ln -s /etc/qig-clean-dir /var/lib/i2pd/sub/dir-link && ln -s /etc/qig-clean-file /var/lib/i2pd/sub/file-link']);
    const r = await t.must(['sh', '/var/lib/dpkg/info/qubes-i2p-gateway.postinst', 'configure']);
    for (const e of ['dir-link', 'file-link', 'sub']) expect(r.stderr).toContain(`removing /var/lib/i2pd/${e}: written by a run outside the qube it belongs to`);
    const left = (await t.must(['ls', '-A', '/var/lib/i2pd'])).stdout.split('\n');
    for (const e of ['dir-link', 'file-link', 'sub']) expect(left).not.toContain(e);
    expect((await t.must(['sh', '-c', 'cat /etc/qig-clean-dir/file /etc/qig-clean-file && stat -c "%U %F" /etc/qig-clean-dir /etc/qig-clean-file'])).stdout)
      .toBe('keep\nkeep\nroot directory\nroot regular file\n');
    await t.must(['rm', '-r', '/etc/qig-clean-dir', '/etc/qig-clean-file']);
  });
});

describe('the gateway booted from that template', () => {
  beforeAll(async () => {
    if (template === undefined || tm === undefined) throw new Error('no template');
    try {
      await tm.poweroff();
    } finally {
      await tm.kill();
      tm = undefined;
    }
    await template.unmount();
    lab = await Lab.create({ sanctionedUsers: [], sanctionedUids: [uidIn(template.upper, 'debian-tor'), uidIn(template.upper, 'i2pd')], gateway: 'booted' });
    gw = await bootGateway(lab, {
      name: 'qig-rootfiles-gw',
      lowers: [template.upper, pristine],
      rw: join(template.base, 'rw-rootfiles'),
      services: gatewayServices(RELEASE.config.qubes.service),
      log,
    });
  });

  describe('a compromised i2pd cannot make root write, chown or hand over root\'s files (real systemd, booted gateway)', () => {
    it('links to root\'s files under the names the console program writes: after the restart, root\'s files are unchanged and i2pd has its own password', async () => {
      await waitActive();
      await M().must(['sh', '-c', `printf 'root:x:0:0:root:/root:/bin/sh\\n' >${TARGET} && chmod 0644 ${TARGET} && printf '%s' ${SECRET_TEXT} >${SECRET} && chmod 0600 ${SECRET}`]);
      const target = await fingerprint(TARGET);
      const secret = await fingerprint(SECRET);
      const old = (await M().must(['cat', PATHS.consolePassword])).stdout;
      await asI2pd(`rm -f ${PATHS.consolePassword} && ln -s ${TARGET} ${PATHS.consolePassword}.new && ln -s ${SECRET} ${PATHS.i2pdRuntimeConf}.new`);
      await exitAndRestart();
      await waitActive();
      expect(await fingerprint(TARGET)).toBe(target);
      expect(await fingerprint(SECRET)).toBe(secret);
      expect((await M().must(['stat', '-c', '%F %U %a', PATHS.consolePassword])).stdout.trim()).toBe('regular file i2pd 600');
      const pass = (await M().must(['cat', PATHS.consolePassword])).stdout;
      expect(pass).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(pass, 'a new password, the old file was deleted').not.toBe(old);
      const conf = (await M().must(['cat', PATHS.i2pdRuntimeConf])).stdout;
      expect(conf).toContain(`\npass = ${pass}\n`);
      expect(conf).not.toContain(SECRET_TEXT);
      expect(await consoleStatus(pass)).toBe('200');
    });

    it('the password file made a link to a root-only file: i2pd never gets its text (it does not start until the link is gone)', async () => {
      await waitActive();
      const secret = await fingerprint(SECRET);
      await asI2pd(`ln -sfn ${SECRET} ${PATHS.consolePassword}`);
      await exitAndRestart();
      // Whatever systemd did meanwhile (ExecStartPre refused, restarts), i2pd's config never held root's text.
      for (let i = 0; i < 10; i++) {
        const conf = await M().exec(['cat', PATHS.i2pdRuntimeConf]);
        expect(conf.stdout).not.toContain(SECRET_TEXT);
        await sleep(300);
      }
      const journal = await M().exec(['journalctl', '-q', '-u', I2PD, '-o', 'cat', '--no-pager']);
      expect(journal.stdout, 'the program said why it did not start i2pd').toMatch(/Permission denied/);
      expect(await fingerprint(SECRET)).toBe(secret);
      // The link removed, i2pd starts again with a password of its own.
      await asI2pd(`rm -f ${PATHS.consolePassword}`);
      await M().must(['systemctl', 'reset-failed', I2PD]);
      await M().must(['systemctl', 'restart', I2PD], { timeoutMs: 60_000 });
      await waitActive();
      const pass = (await M().must(['cat', PATHS.consolePassword])).stdout;
      expect(await consoleStatus(pass)).toBe('200');
    });
  });
});
