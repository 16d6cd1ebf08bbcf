/**
 * A stand-in for qubes-firewall.service of Qubes OS 4.3 in the gateway qube: the behaviour of
 * /usr/bin/qubes-firewall (QubesOS/qubes-core-agent-linux, branch release4.3, `qubesagent/firewall.py`,
 * NftablesWorker) and of its unit (`vm-systemd/qubes-firewall.service`: Type=notify-reload, Restart=on-failure),
 * as far as it touches the ruleset and the hooks. Written from reading that source (at 35a5720b, "version
 * 4.3.46"); none of its code is copied. What it stands for, step by step:
 *
 *   start    init(): tables ip and ip6 qubes-firewall (set dns-addr, chain qubes-forward, base chains forward
 *            (filter, policy drop: established, non-vif input, then jump qubes-forward), prerouting and
 *            postrouting (priority raw)); then run_firewall_dir(): every regular executable file of
 *            /etc/qubes/qubes-firewall.d, then (unless the qvm-service custom-persist is on, i.e.
 *            /var/run/qubes-service/custom-persist exists) of /rw/config/qubes-firewall.d, in sorted order; then,
 *            unless custom-persist, /rw/config/qubes-firewall-user-script; only then (after READY=1) the initial
 *            load: for every client in qubesdb /qubes-firewall/<ip>/ its chain qbs-<ip> (created once per
 *            process, with the jump from qubes-forward), dns-addr refilled from /etc/resolv.conf, the chain's
 *            rules, and update_connected_ips() (prerouting/postrouting drops for /connected-ips, /connected-ips6).
 *            Exit codes of the executables are ignored, as subprocess.call ignores them.
 *   reload   SIGHUP (`systemctl reload`, and `try-reload-or-restart` from qubes-setup-dnat-to-ns when the
 *            upstream DNS changed): handle_addr() again for every client: dns-addr and the per-client chains are
 *            flushed and refilled. No hook, no user script, no init, no connected-ips update.
 *   stop     SIGTERM: cleanup() deletes tables ip and ip6 qubes-firewall.
 *   restart  stop, then start in a new process (which creates the per-client chains and their jumps again).
 *   restartAfterFailure  Restart=on-failure: the process died without cleanup(), systemd starts a new one 5 s
 *            later over the tables the old one left (so qubes-firewall's own rules appear twice: upstream's
 *            behaviour, kept here on purpose), and the hooks run again.
 *
 * What differs from the real service, and why:
 *   - qubesdb is this object's `targets` and `connectedIps`: the lab's one client (10.137.0.10 and
 *     fd09:24ef:4179::a89:a on vif3.0) with dom0's default qvm-firewall for a new qube (qubes-core-admin
 *     `qubes/firewall.py` load_defaults: one rule `action=accept`; the policy is always drop).
 *   - /rw (the qube's private volume, kept across reboots in Qubes) is a directory of the gateway machine's
 *     root like any other (its scratch upper layer); `writeRw` puts files there through the machine itself.
 *   - rules with `dsthost` (DNS resolution at load time) and the conntrack pruning of connections the new rules
 *     block (conntrack -D) are not emulated: the lab's client has the default rules, which block nothing.
 *   - the executables run through the lab's gateway helpers (`lab.gwRun`, as `Gateway.runHook` runs our hook),
 *     as root with systemd's PATH, so nft and the hook come from the gateway machine, wherever that is.
 */
import { SYSTEMD_PATH } from './gateway.ts';
import { A, type Lab } from './lab.ts';
import type { RunResult } from './sh.ts';

/** One qvm-firewall rule as qubesdb carries it (`action=accept proto=tcp dstports=443-443 ...`). */
export interface QubesRule {
  readonly action: 'accept' | 'drop';
  readonly proto?: 'tcp' | 'udp' | 'icmp';
  readonly dst4?: string;
  readonly dst6?: string;
  readonly dstports?: string;
  readonly specialtarget?: 'dns';
  readonly icmptype?: string;
}

/** /qubes-firewall/<addr>/: the numbered rules (the policy, always drop, is added after them). */
export interface FirewallTarget {
  readonly addr: string;
  readonly rules: readonly QubesRule[];
}

/** One executable run by start(), with what it returned (which the real service ignores). */
export interface HookRun {
  readonly path: string;
  readonly code: number | null;
  readonly stderr: string;
}

export const HOOK_DIR = '/etc/qubes/qubes-firewall.d';
export const RW_CONFIG = '/rw/config';
const CUSTOM_PERSIST = '/var/run/qubes-service/custom-persist';
const TABLE = 'qubes-firewall';

/** dom0's qvm-firewall for a new qube. */
export const DEFAULT_RULES: readonly QubesRule[] = [{ action: 'accept' }];

type Family = 4 | 6;

export class QubesFirewall43 {
  readonly lab: Lab;
  targets: FirewallTarget[];
  connectedIps: Record<Family, string[]>;
  /** The per-client chains this "process" created (reset by every start, as a new process starts empty). */
  private chains: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };

  constructor(lab: Lab, opts: { targets?: FirewallTarget[]; connectedIps?: Record<Family, string[]> } = {}) {
    this.lab = lab;
    this.targets = opts.targets ?? [
      { addr: A.client4, rules: DEFAULT_RULES },
      { addr: A.client6, rules: DEFAULT_RULES },
    ];
    this.connectedIps = opts.connectedIps ?? { 4: [A.client4], 6: [A.client6] };
  }

  /** Write a file of the gateway's private volume (an absolute path under /rw), with its mode, as root there. */
  async writeRw(path: string, text: string, mode: string): Promise<void> {
    if (!path.startsWith('/rw/')) throw new Error(`writeRw: ${path} is not under /rw`);
    const r = await this.lab.gwRun(['sh', '-c', 'mkdir -p "${1%/*}" && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode], { input: text });
    if (r.code !== 0) throw new Error(`writeRw ${path}: ${r.stderr}`);
  }

  async start(): Promise<HookRun[]> {
    this.chains = { 4: new Set(), 6: new Set() };
    await this.nft(initText());
    const persist = await this.customPersist();
    const runs: HookRun[] = [];
    for (const dir of persist ? [HOOK_DIR] : [HOOK_DIR, `${RW_CONFIG}/qubes-firewall.d`]) {
      for (const path of await this.executables(dir)) runs.push(await this.exec(path));
    }
    const userScript = `${RW_CONFIG}/qubes-firewall-user-script`;
    if (!persist && (await this.isExecutableFile(userScript))) runs.push(await this.exec(userScript));
    for (const t of this.targets) await this.handleAddr(t);
    await this.updateConnectedIps(4);
    await this.updateConnectedIps(6);
    return runs;
  }

  async reload(): Promise<void> {
    for (const t of this.targets) await this.handleAddr(t);
  }

  async stop(): Promise<void> {
    await this.nft(`delete table ip ${TABLE}\ndelete table ip6 ${TABLE}\n`);
  }

  async restart(): Promise<HookRun[]> {
    await this.stop();
    return this.start();
  }

  async restartAfterFailure(): Promise<HookRun[]> {
    return this.start();
  }

  /**
   * The upstream DNS changed (NetworkManager or dhclient ran qubes-setup-dnat-to-ns): 4.3's script replaces the
   * chain ip qubes dnat-dns and, the qvm-service qubes-firewall being on in a network qube, asks systemd to
   * `try-reload-or-restart qubes-firewall`, which for a Type=notify-reload unit that runs is a reload.
   */
  async upstreamDnsChanged(upstream: readonly string[]): Promise<void> {
    await this.nft(dnatDnsText(upstream));
    await this.reload();
  }

  // ------------------------------------------------------------------------------------------------- pieces

  private async nft(text: string): Promise<void> {
    const r = await this.lab.gwRun(['nft', '-f', '-'], { input: text, timeoutMs: 20_000 });
    if (r.code !== 0) throw new QubesFirewallNftError(`qubes-firewall (stand-in): nft failed: ${r.stderr}${r.stdout}\n--- input ---\n${text}`);
  }

  private async customPersist(): Promise<boolean> {
    return (await this.lab.gwRun(['test', '-f', CUSTOM_PERSIST])).code === 0;
  }

  private async isExecutableFile(path: string): Promise<boolean> {
    return (await this.lab.gwRun(['sh', '-c', '[ -f "$1" ] && [ -x "$1" ]', 'sh', path])).code === 0;
  }

  /** The directory's regular executable files (symlinks followed), sorted by name as Python's sorted() does. */
  private async executables(dir: string): Promise<string[]> {
    const list = await this.lab.gwRun(['sh', '-c', '[ -d "$1" ] || exit 0; cd "$1" && for f in * .*; do [ -f "$f" ] && [ -x "$f" ] && printf "%s\\n" "$f"; done; exit 0', 'sh', dir]);
    if (list.code !== 0) throw new Error(`qubes-firewall (stand-in): cannot list ${dir}: ${list.stderr}`);
    const names = [...new Set(list.stdout.split('\n').filter((n) => n !== ''))];
    return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((n) => `${dir}/${n}`);
  }

  private async exec(path: string): Promise<HookRun> {
    const r: RunResult = await this.lab.gwRun(['env', '-i', `PATH=${SYSTEMD_PATH}`, path], { timeoutMs: 20_000 });
    return { path, code: r.code, stderr: r.stderr };
  }

  private async resolvConfNameservers(family: Family): Promise<string[]> {
    const r = await this.lab.gwRun(['cat', '/etc/resolv.conf']);
    const out: string[] = [];
    for (const raw of r.code === 0 ? r.stdout.split('\n') : []) {
      const line = raw.trim();
      if (!line.startsWith('nameserver')) continue;
      const addr = line.split(' ')[1] ?? '';
      if (family === 4 && (line.match(/\./g) ?? []).length === 3) out.push(addr);
      if (family === 6 && line.includes(':')) out.push(addr);
    }
    return out;
  }

  /** handle_addr: the client's rules; on a rule that cannot be parsed or applied, the client gets drop only. */
  private async handleAddr(t: FirewallTarget): Promise<void> {
    try {
      await this.applyRules(t.addr, [...t.rules, { action: 'drop' }]);
    } catch (e) {
      if (!(e instanceof QubesFirewallNftError) && !(e instanceof RuleParseError)) throw e;
      await this.applyRules(t.addr, [{ action: 'drop' }]);
    }
  }

  private async applyRules(addr: string, rules: readonly QubesRule[]): Promise<void> {
    const family: Family = addr.includes(':') ? 6 : 4;
    const fam = family === 6 ? 'ip6' : 'ip';
    const chain = `qbs-${addr.replace(/[.:]/g, '-')}`;
    if (!this.chains[family].has(chain)) {
      await this.nft(`table ${fam} ${TABLE} {\n  chain ${chain} {\n  }\n  chain qubes-forward {\n    ${fam} saddr ${addr} jump ${chain}\n  }\n}\n`);
      this.chains[family].add(chain);
    }
    const dns = await this.resolvConfNameservers(family);
    const body = rules.flatMap((r) => ruleLines(r, family));
    await this.nft(
      `flush set ${fam} ${TABLE} dns-addr\n` +
        (dns.length > 0 ? `add element ${fam} ${TABLE} dns-addr { ${dns.join(', ')} }\n` : '') +
        `flush chain ${fam} ${TABLE} ${chain}\n` +
        `table ${fam} ${TABLE} {\n  chain ${chain} {\n${body.map((l) => `    ${l}\n`).join('')}  }\n}\n`,
    );
  }

  private async updateConnectedIps(family: Family): Promise<void> {
    const fam = family === 6 ? 'ip6' : 'ip';
    const ips = this.connectedIps[family];
    let text = `flush chain ${fam} ${TABLE} prerouting\nflush chain ${fam} ${TABLE} postrouting\n`;
    if (ips.length > 0) {
      const set = `{ ${ips.join(', ')} }`;
      text +=
        `table ${fam} ${TABLE} {\n  chain prerouting {\n    iifname != "vif*" ${fam} saddr ${set} drop\n  }\n` +
        `  chain postrouting {\n    oifname != "vif*" ${fam} daddr ${set} drop\n  }\n}\n`;
    }
    await this.nft(text);
  }
}

class QubesFirewallNftError extends Error {}
class RuleParseError extends Error {}

/** init(): both families' tables, created empty of per-client rules. */
function initText(): string {
  return ([4, 6] as const)
    .map((n) => {
      const fam = n === 6 ? 'ip6' : 'ip';
      return (
        `table ${fam} ${TABLE} {\n` +
        `  set dns-addr {\n    type ipv${n}_addr\n  }\n` +
        '  chain qubes-forward {\n  }\n' +
        '  chain forward {\n    type filter hook forward priority 0;\n    policy drop;\n' +
        '    ct state established,related accept\n    meta iifname != "vif*" accept\n    jump qubes-forward\n  }\n' +
        '  chain prerouting {\n    type filter hook prerouting priority -300;\n    policy accept;\n  }\n' +
        '  chain postrouting {\n    type filter hook postrouting priority -300;\n    policy accept;\n  }\n' +
        '}\n'
      );
    })
    .join('');
}

/** One qvm-firewall rule as nft rules (two when ports are given without a protocol: tcp and udp). */
export function ruleLines(rule: QubesRule, family: Family): string[] {
  const known = new Set(['action', 'proto', 'dst4', 'dst6', 'dstports', 'specialtarget', 'icmptype']);
  for (const k of Object.keys(rule)) if (!known.has(k)) throw new RuleParseError(`rule option ${k} is not emulated`);
  if (rule.dst4 !== undefined && family === 6) throw new RuleParseError('IPv4 rule for an IPv6 address');
  if (rule.dst6 !== undefined && family === 4) throw new RuleParseError('IPv6 rule for an IPv4 address');
  const ip = family === 6 ? 'ip6' : 'ip';
  const action = rule.action === 'accept' ? 'accept' : `reject with icmp${family === 6 ? 'v6' : ''} type admin-prohibited`;
  let m = '';
  if (rule.proto !== undefined) m += family === 4 ? ` ip protocol ${rule.proto}` : ` ip6 nexthdr ${rule.proto === 'icmp' ? 'icmpv6' : rule.proto}`;
  if (rule.dst4 !== undefined) m += ` ip daddr ${rule.dst4}`;
  else if (rule.dst6 !== undefined) m += ` ip6 daddr ${rule.dst6}`;
  let ports = rule.dstports;
  if (ports !== undefined) {
    const [lo, hi] = ports.split('-');
    if (hi === undefined || lo === hi) ports = lo;
  }
  if (rule.specialtarget === 'dns') {
    if (ports !== undefined && ports !== '53') return [];
    ports = '53';
    m += ` ${ip} daddr @dns-addr`;
  }
  if (rule.icmptype !== undefined) m += family === 4 ? ` icmp type ${rule.icmptype}` : ` icmpv6 type ${rule.icmptype}`;
  m = m.trim();
  const pre = m === '' ? '' : `${m} `;
  if (ports === undefined) return [`${pre}${action}`];
  if (rule.proto === undefined) return [`${pre}tcp dport ${ports} ${action}`, `${pre}udp dport ${ports} ${action}`];
  return [`${pre}${rule.proto} dport ${ports} ${action}`];
}

/** What qubes-setup-dnat-to-ns (4.3) does when the upstream DNS changed: chain dnat-dns replaced in one go. */
export function dnatDnsText(upstream: readonly string[]): string {
  // The qube's two virtual DNS addresses (qubesdb /qubes-netvm-primary-dns, -secondary-dns), each mapped onto the
  // upstream servers in turn; with no IPv4 upstream at all, their DNS is dropped.
  const rules: string[] = [];
  for (const [i, vm] of [A.dns1, A.dns2].entries()) {
    const verdict = upstream.length === 0 ? 'drop' : `dnat to ${upstream[i % upstream.length] ?? ''}`;
    rules.push(`ip daddr ${vm} udp dport 53 ${verdict}`, `ip daddr ${vm} tcp dport 53 ${verdict}`);
  }
  return (
    'add table ip qubes\nadd chain ip qubes dnat-dns\ndelete chain ip qubes dnat-dns\n' +
    `table ip qubes {\nchain dnat-dns {\ntype nat hook prerouting priority dstnat; policy accept;\n${rules.join('\n')}\n}\n}\n`
  );
}
