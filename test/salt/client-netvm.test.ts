/**
 * salt/client-netvm on its own, as Salt's cmd.script runs it, against the fake dom0 through the stand-in qvm-*
 * tools: every kind of netvm it records, the stateful last line Salt reads, and the errors that must stop a
 * state. (formula.test.ts runs it through clients.sls and remove.sls.)
 */
import { describe, expect, it } from 'vitest';
import { readStaticSources } from '../../src/io/static.ts';
import { CLIENT_NETVM } from '../../src/render/salt/names.ts';
import { script, stateful } from './apply.ts';
import { FakeDom0 } from './dom0-fake.ts';

const SCRIPT = readStaticSources().clientNetvm;

function dom0(): FakeDom0 {
  const d = new FakeDom0();
  d.addQube('sys-net', 'AppVM', { 'provides-network': true, netvm: '' }, 'Running');
  d.addQube('sys-firewall', 'AppVM', { 'provides-network': true, netvm: 'sys-net' }, 'Running');
  d.addQube('sys-whonix', 'AppVM', { 'provides-network': true, netvm: 'sys-firewall' });
  d.addQube('sys-i2p', 'AppVM', { 'provides-network': true, netvm: 'sys-firewall' });
  d.addQube('default', 'AppVM', {});
  d.addQube('whonixed', 'AppVM', { netvm: 'sys-whonix' });
  d.addQube('offline', 'AppVM', { netvm: '' });
  return d;
}

describe('salt/client-netvm', () => {
  it('uses the feature name the formula documents', () => {
    expect(SCRIPT).toContain(`\nFEATURE=${CLIENT_NETVM.feature}\n`);
    expect(SCRIPT.startsWith('#!/bin/sh\n')).toBe(true);
  });

  it('records "*default*", a qube name, or "none", once; says changed=no after', () => {
    const d = dom0();
    for (const [client, want] of [['default', '*default*'], ['whonixed', 'sys-whonix'], ['offline', 'none']] as const) {
      const r = script(d, SCRIPT, ['record', client, 'sys-i2p']);
      expect(r.code, r.stderr).toBe(0);
      expect(stateful(client, r.stdout)).toEqual({ changed: true, comment: `${client}: netvm before sys-i2p recorded (${want})` });
      expect(d.getFeature(client, CLIENT_NETVM.feature)).toBe(want);
      const again = script(d, SCRIPT, ['record', client, 'sys-i2p']);
      expect(stateful(client, again.stdout).changed).toBe(false);
    }
  });

  it('restore with no record gives the client no netvm (never the clear net by guess) and says how to set one; on another netvm it stays', () => {
    const d = dom0();
    d.setPref('default', 'netvm', 'sys-i2p');
    const r = script(d, SCRIPT, ['restore', 'default', 'sys-i2p']);
    const out = stateful('default', r.stdout);
    expect(out.changed).toBe(true);
    expect(out.comment).toContain('default: no netvm now (none was recorded before sys-i2p');
    expect(out.comment).toContain('qvm-prefs default netvm QUBE');
    expect(d.get('default').prefs).toEqual({ netvm: '' });
    expect(d.netvmOf('default')).toBe('');
    // A second run: the client no longer uses the gateway, nothing changes.
    expect(stateful('default', script(d, SCRIPT, ['restore', 'default', 'sys-i2p']).stdout).changed).toBe(false);
    // A recorded "*default*" still goes back to the system default.
    d.addQube('recorded', 'AppVM', {});
    script(d, SCRIPT, ['record', 'recorded', 'sys-i2p']);
    d.setPref('recorded', 'netvm', 'sys-i2p');
    expect(stateful('recorded', script(d, SCRIPT, ['restore', 'recorded', 'sys-i2p']).stdout)).toEqual({ changed: true, comment: 'recorded: netvm back to sys-firewall (recorded *default*)' });
    expect(d.get('recorded').prefs).toEqual({});
    const other = script(d, SCRIPT, ['restore', 'whonixed', 'sys-i2p']);
    expect(stateful('whonixed', other.stdout)).toEqual({ changed: false, comment: 'whonixed: does not use sys-i2p' });
    expect(d.netvmOf('whonixed')).toBe('sys-whonix');
  });

  it('close puts one drop rule first, once, and keeps the client\'s own rules; restore of a client that left the gateway removes it; a failed restore keeps it', () => {
    const d = dom0();
    const rule = 'action=drop comment=qubes-i2p-gateway-fail-closed';
    d.get('whonixed').firewall = ['action=accept specialtarget=dns', 'action=drop'];
    const r = script(d, SCRIPT, ['close', 'whonixed', 'sys-i2p']);
    expect(r.code, r.stderr).toBe(0);
    expect(stateful('whonixed', r.stdout).changed).toBe(true);
    expect(d.firewallRules('whonixed')).toEqual([rule, 'action=accept specialtarget=dns', 'action=drop']);
    expect(stateful('whonixed', script(d, SCRIPT, ['close', 'whonixed', 'sys-i2p']).stdout).changed).toBe(false);
    expect(d.firewallRules('whonixed')).toHaveLength(3);
    // Still on sys-whonix (never pointed at the gateway): restore only takes the rule away.
    const back = script(d, SCRIPT, ['restore', 'whonixed', 'sys-i2p']);
    expect(stateful('whonixed', back.stdout)).toEqual({ changed: true, comment: 'whonixed: does not use sys-i2p; its fail-closed firewall rule removed' });
    expect(d.firewallRules('whonixed')).toEqual(['action=accept specialtarget=dns', 'action=drop']);
    // A restore that fails (the recorded netvm is gone) leaves the client on the gateway, and the rule with it.
    script(d, SCRIPT, ['record', 'default', 'sys-i2p']);
    d.setFeature('default', CLIENT_NETVM.feature, 'sys-gone');
    script(d, SCRIPT, ['close', 'default', 'sys-i2p']);
    d.setPref('default', 'netvm', 'sys-i2p');
    expect(script(d, SCRIPT, ['restore', 'default', 'sys-i2p']).code).toBe(1);
    expect(d.firewallRules('default')[0]).toBe(rule);
  });

  it('fails, so the state fails: a client that does not exist (record), bad usage, an unknown action', () => {
    const d = dom0();
    const missing = script(d, SCRIPT, ['record', 'nope', 'sys-i2p']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope does not exist. Fix: create it, or remove it from qubes.clients and rebuild');
    expect(script(d, SCRIPT, ['record', 'default']).code).toBe(1);
    expect(script(d, SCRIPT, ['forget', 'default', 'sys-i2p']).stderr).toContain('unknown action forget');
    // restore of a client that is gone is not an error: there is nothing to give back.
    expect(stateful('nope', script(d, SCRIPT, ['restore', 'nope', 'sys-i2p']).stdout).changed).toBe(false);
  });

  it('grant-sam writes the granted qube\'s address into the gateway\'s vm-config feature (its qubesdb), once; a new address replaces it; revoke-sam unsets it', () => {
    const d = dom0();
    d.addQube('torrents', 'AppVM', { netvm: 'sys-i2p', ip: '10.137.0.12' });
    const r = script(d, SCRIPT, ['grant-sam', 'torrents', 'sys-i2p']);
    expect(r.code, r.stderr).toBe(0);
    expect(stateful('torrents', r.stdout)).toEqual({ changed: true, comment: 'sys-i2p: sam for torrents (10.137.0.12) only' });
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-sam')).toBe('10.137.0.12');
    expect(stateful('torrents', script(d, SCRIPT, ['grant-sam', 'torrents', 'sys-i2p']).stdout).changed).toBe(false);
    d.setPref('torrents', 'ip', '10.137.0.40');
    expect(stateful('torrents', script(d, SCRIPT, ['grant-sam', 'torrents', 'sys-i2p']).stdout).changed).toBe(true);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-sam')).toBe('10.137.0.40');
    // I2CP is a feature of its own.
    expect(script(d, SCRIPT, ['grant-i2cp', 'torrents', 'sys-i2p']).code).toBe(0);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-i2cp')).toBe('10.137.0.40');
    const off = script(d, SCRIPT, ['revoke-sam', '-', 'sys-i2p']);
    expect(stateful('-', off.stdout)).toEqual({ changed: true, comment: 'sys-i2p: no qube has sam now (was 10.137.0.40)' });
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-sam')).toBeUndefined();
    expect(stateful('-', script(d, SCRIPT, ['revoke-sam', '-', 'sys-i2p']).stdout).changed).toBe(false);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-i2cp')).toBe('10.137.0.40');
    // SOCKS may go to many qubes: their addresses, space-separated, in the order of the config.
    d.addQube('chat', 'AppVM', { netvm: 'sys-i2p', ip: '10.137.0.41' });
    const many = script(d, SCRIPT, ['grant-socks', 'torrents,chat', 'sys-i2p']);
    expect(many.code, many.stderr).toBe(0);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-socks')).toBe('10.137.0.40 10.137.0.41');
    expect(stateful('-', script(d, SCRIPT, ['grant-socks', 'torrents,chat', 'sys-i2p']).stdout).changed).toBe(false);
    expect(script(d, SCRIPT, ['grant-socks', 'torrents,nope', 'sys-i2p']).code).toBe(1);
    // IRC the same way (i2p.apps.irc), its own feature; revoked, it is unset.
    expect(script(d, SCRIPT, ['grant-irc', 'chat', 'sys-i2p']).code).toBe(0);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-irc')).toBe('10.137.0.41');
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-socks')).toBe('10.137.0.40 10.137.0.41');
    expect(script(d, SCRIPT, ['revoke-irc', '-', 'sys-i2p']).code).toBe(0);
    expect(d.getFeature('sys-i2p', 'vm-config.qubes-i2p-gateway-irc')).toBeUndefined();
    // A granted qube that does not exist fails the state.
    const missing = script(d, SCRIPT, ['grant-sam', 'nope', 'sys-i2p']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope does not exist. Fix: create it, or remove it from i2p.apps.sam and rebuild');
  });

  it('a failed netvm change (Qubes refuses) fails the script, and the record stays for the next run', () => {
    const d = dom0();
    script(d, SCRIPT, ['record', 'whonixed', 'sys-i2p']);
    d.setPref('whonixed', 'netvm', 'sys-i2p');
    // sys-whonix no longer provides network: qvm-prefs fails, the script with it.
    d.get('sys-whonix').prefs['provides-network'] = false;
    const r = script(d, SCRIPT, ['restore', 'whonixed', 'sys-i2p']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('does not provide network');
    expect(d.getFeature('whonixed', CLIENT_NETVM.feature)).toBe('sys-whonix');
    expect(d.netvmOf('whonixed')).toBe('sys-i2p');
  });
});
