/**
 * The install checks can fail: a deliberately leaky package, built with our writer, is caught by the same
 * comparisons install.test.ts relies on (shadow baseline, tree diff, policy-rc.d log, processes in the chroot).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFile, textFile } from '../../src/files.ts';
import type { DebMeta } from '../../src/pack/deb.ts';
import { listTree, type Chroot } from '../util/chroot.ts';
import { buildDummyDeb } from './dummy.ts';
import { buildDeb, diffTrees, ignored, installArgs, policyRequests, prepare, runShadow, shippedPaths, type ShadowRun } from './lifecycle.ts';
import { SOURCE_DATE_EPOCH, getPristine, timed } from './suite.ts';

const LEAKY_POSTINST = `#!/bin/sh
set -e
# Everything a maintainer script must not do; each line is one thing the checks must see.
mkdir -p /var/lib/qig-leak && echo leak > /var/lib/qig-leak/state
echo "# appended by qig-leaky" >> /etc/tor/torrc
ln -sf /usr/lib/systemd/system/qig-leaky.service /etc/systemd/system/multi-user.target.wants/qig-leaky.service
invoke-rc.d tor restart || true
setsid sleep 600 </dev/null >/dev/null 2>&1 &
exit 0
`;

const meta: DebMeta = {
  package: 'qig-leaky',
  version: '1.0',
  architecture: 'all',
  maintainer: 'qubes-i2p-gateway tests <tests@invalid>',
  section: 'misc',
  priority: 'optional',
  depends: ['tor'],
  description: { summary: 'deliberately leaky package for the install harness', extended: ['Test only.'] },
  scripts: { postinst: LEAKY_POSTINST },
};
const files = [
  configFile('/etc/qig-leaky/leaky.conf', 'x = 1\n'),
  textFile('/usr/lib/systemd/system/qig-leaky.service', '[Service]\nExecStart=/bin/true\n'),
  textFile('/usr/share/doc/qig-leaky/copyright', 'test only\n'),
];
const LEFT_BEHIND = ['/etc/systemd/system/multi-user.target.wants/qig-leaky.service', '/var/lib/qig-leak', '/var/lib/qig-leak/state'];

describe('the install checks catch a leaky package', () => {
  const pkg = buildDeb(meta, files, SOURCE_DATE_EPOCH);
  const dummy = buildDummyDeb(SOURCE_DATE_EPOCH);
  let shadow: ShadowRun;
  let c: Chroot | undefined;

  beforeAll(async () => {
    const pristine = await getPristine();
    shadow = await timed('leaky: shadow install + purge', () => runShadow(pristine, pkg, SOURCE_DATE_EPOCH));
    c = await prepare(pristine, [dummy, pkg]);
  });
  afterAll(async () => {
    await c?.dispose();
  });

  it('after install: extra paths, a changed dependency conffile, a start request, a running process', async () => {
    if (c === undefined) throw new Error('no chroot');
    await c.must(installArgs([dummy, pkg]));
    const d = diffTrees(shadow.installed.listing, await listTree(c), ignored);
    const shipped = shippedPaths(files);
    expect(d.added.filter((p) => !shipped.has(p))).toEqual(LEFT_BEHIND);
    expect(d.changed).toEqual(['/etc/tor/torrc']);
    expect(d.removed).toEqual([]);
    const extra = [...policyRequests(c)];
    for (const line of shadow.installed.policy) {
      const i = extra.indexOf(line);
      if (i >= 0) extra.splice(i, 1);
    }
    expect(extra).toEqual(['tor (restart)']);
    expect(c.processes().map((p) => p.comm)).toEqual(['sleep']);
  });

  it('after purge: the same leftovers against the purged shadow', async () => {
    if (c === undefined) throw new Error('no chroot');
    await c.must(['apt-get', 'purge', '-y', meta.package]);
    const d = diffTrees(shadow.purged.listing, await listTree(c), ignored);
    expect(d).toEqual({ added: LEFT_BEHIND, removed: [], changed: ['/etc/tor/torrc'] });
  });
});
