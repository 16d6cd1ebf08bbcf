/**
 * A compromised daemon's user against root's files (issue 19.1): nothing root runs for i2pd may write, read or
 * chown through a name that i2pd's user controls. /var/lib/i2pd (i2pd's state, where the console password lives)
 * and /run/i2pd (its runtime directory, where the config i2pd runs with is written) both belong to that user, who
 * can plant a symbolic link under any name there, delete the password file, and exit: `Restart=always` runs the
 * unit's ExecStartPre again.
 *
 * Here, in the lab's gateway machine (Debian 13's root, the packaged units), i2pd's user plants those links, and
 * the unit's ExecStartPre runs as the packaged drop-in says (as root with "+", as User= without), then the real
 * i2pd starts from the packaged unit. Root's files must come out unchanged, still root's, and nothing of them may
 * reach i2pd's config. (With the program run as root, `…pass.new` → a root file truncated it and gave it to i2pd,
 * a password file → a root-only file put that file's text into i2pd's config, and the runtime config's temporary
 * name → a root file overwrote it.)
 */
import { afterAll, beforeAll, describe as suite, expect, it } from 'vitest';
import { PATHS } from '../../src/render/gateway/common.ts';
import type { Lab } from './lib/lab.ts';
import { parseExec } from './lib/units.ts';
import { UNIT, World, SHARED_DESTINATION } from './lib/world.ts';

let w: World;
let lab: Lab;

const CONSOLE = 7070;
const ROUTER_ONLY = { tor: 'off', router: 'real', dnsmasq: false, tinyproxy: false } as const;
const NOTHING = { tor: 'off', router: 'off', dnsmasq: false, tinyproxy: false } as const;

/** Root's files the links point at: one anyone may read, one only root may (letters and digits only, so that a
 * program taking it for a password would not refuse it). */
const TARGET = '/etc/qig-root-target';
const SECRET = '/etc/qig-root-secret';
const SECRET_TEXT = 'RootOnlySecretRootOnlySecret0123';

beforeAll(async () => {
  w = await World.create(SHARED_DESTINATION);
  lab = w.lab;
});

afterAll(async () => {
  await w?.destroy();
});

async function must(argv: readonly string[], user?: string): Promise<string> {
  const r = await lab.gwRun(argv, user ? { user } : {});
  if (r.code !== 0) throw new Error(`${argv.join(' ')}${user ? ` (as ${user})` : ''} exited ${String(r.code)}: ${r.stderr}`);
  return r.stdout;
}

/** Owner, mode, size and digest: what a link followed by root would change. */
async function fingerprint(path: string): Promise<string> {
  return (await must(['sh', '-c', 'stat -c "%U:%G %a %s" "$1" && sha256sum <"$1"', 'sh', path])).trim();
}

/** Root's two files, fresh, and i2pd's runtime directory as systemd makes it (RuntimeDirectory=i2pd, 0700). */
async function setUp(): Promise<{ target: string; secret: string }> {
  await w.use(NOTHING);
  await must(['sh', '-c', `rm -f ${TARGET} ${SECRET} && printf 'root:x:0:0:root:/root:/bin/sh\\n' >${TARGET} && chmod 0644 ${TARGET} && printf '%s' ${SECRET_TEXT} >${SECRET} && chmod 0600 ${SECRET}`]);
  await must(['install', '-d', '-o', 'i2pd', '-g', 'i2pd', '-m', '0700', '/run/i2pd']);
  return { target: await fingerprint(TARGET), secret: await fingerprint(SECRET) };
}

/** The drop-in's ExecStartPre lines run as systemd runs them: "+" as root, otherwise as the unit's User=. */
async function runStartPre(): Promise<Array<{ code: number | null; stderr: string }>> {
  const unit = w.gw.unit(UNIT.i2pd);
  const user = unit.get('Service', 'User') ?? 'root';
  const out: Array<{ code: number | null; stderr: string }> = [];
  for (const line of unit.list('Service', 'ExecStartPre').filter((l) => l !== '')) {
    const ex = parseExec(line, new Map());
    const r = await lab.gwRun(ex.argv, ex.privileged ? {} : { user });
    out.push({ code: r.code, stderr: r.stderr });
  }
  expect(out.length, 'the drop-in has its ExecStartPre').toBeGreaterThan(0);
  return out;
}

/** What i2pd would run with, if the program wrote it (empty if not). */
async function runtimeConf(): Promise<string> {
  return (await lab.gwRun(['cat', PATHS.i2pdRuntimeConf])).stdout;
}

suite('i2pd\'s user cannot make root write, chown or hand over a file through links in its own directories', () => {
  it('the password\'s temporary name linked to a root file: the file stays root\'s and unchanged', async () => {
    const before = await setUp();
    await must(['rm', '-f', PATHS.consolePassword], 'i2pd');
    await must(['ln', '-sfn', TARGET, `${PATHS.consolePassword}.new`], 'i2pd');
    await runStartPre();
    expect(await fingerprint(TARGET)).toBe(before.target);
    // The program still did its job: a password of its own, i2pd's, 0600, a regular file.
    expect((await must(['stat', '-c', '%F %U %a', PATHS.consolePassword])).trim()).toBe('regular file i2pd 600');
    expect((await must(['cat', PATHS.consolePassword])).trim()).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it('the password file linked to a root-only file: its text never reaches i2pd\'s config', async () => {
    const before = await setUp();
    await must(['rm', '-f', PATHS.consolePassword, PATHS.i2pdRuntimeConf], 'i2pd');
    await must(['ln', '-sfn', SECRET, PATHS.consolePassword], 'i2pd');
    await runStartPre();
    expect(await runtimeConf()).not.toContain(SECRET_TEXT);
    expect(await fingerprint(SECRET)).toBe(before.secret);
    await must(['rm', '-f', PATHS.consolePassword], 'i2pd');
  });

  it('the runtime config\'s temporary name linked to a root file: the file stays root\'s and unchanged', async () => {
    const before = await setUp();
    await must(['ln', '-sfn', TARGET, `${PATHS.i2pdRuntimeConf}.new`], 'i2pd');
    await must(['ln', '-sfn', SECRET, PATHS.i2pdRuntimeConf], 'i2pd');
    await runStartPre();
    expect(await fingerprint(TARGET)).toBe(before.target);
    expect(await fingerprint(SECRET)).toBe(before.secret);
  });

  it('the real i2pd restarted over planted links starts with its own password, and root\'s files are untouched', async () => {
    const before = await setUp();
    await must(['rm', '-f', PATHS.consolePassword], 'i2pd');
    await must(['ln', '-sfn', TARGET, `${PATHS.consolePassword}.new`], 'i2pd');
    await must(['ln', '-sfn', SECRET, `${PATHS.i2pdRuntimeConf}.new`], 'i2pd');
    await w.use(ROUTER_ONLY);
    await lab.waitListening('tcp', CONSOLE, 20_000, 'i2pd console');
    expect(await fingerprint(TARGET)).toBe(before.target);
    expect(await fingerprint(SECRET)).toBe(before.secret);
    const pass = (await must(['cat', PATHS.consolePassword])).trim();
    expect(pass).toMatch(/^[A-Za-z0-9]{32}$/);
    const conf = await runtimeConf();
    expect(conf).toContain(`\npass = ${pass}\n`);
    expect(conf).not.toContain(SECRET_TEXT);
    const asked = await lab.gwRun(['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', '-u', `i2pd:${pass}`, `http://127.0.0.1:${CONSOLE}/`]);
    expect(asked.stdout).toBe('200');
    await w.use(NOTHING);
  });
});
