/**
 * A small, honest stand-in for dom0's qubesd (through its qvm-* tools and the qvm Salt module) and a template's
 * package manager, for applying our rendered states without Qubes. It models only what the real parts are
 * documented (FIELD-NOTES) or read (qubes-core-admin, qubes-core-admin-client, qubes-mgmt-salt-dom0-qvm) to do:
 *
 * - qvm.template_installed as qubes-mgmt-salt-dom0-qvm release4.3 (v4.3.6) does it: "installed" is `qvm-check
 *   --template` (a qube of that name that is a TemplateVM), else `qvm-template install --quiet [--repoid=FROMREPO]
 *   NAME`, searching dom0's default-enabled repositories (only qubes-templates-itl, where Qubes' own Fedora and
 *   Debian templates are) or just FROMREPO; a non-template qube of that name makes qvm-template skip ("already
 *   installed") and the state fail.
 * - `present`/`clone` act only when the qube is missing; qvm-create refuses a missing label and leaves the new
 *   qube's netvm at its default.
 * - prefs compare values *as typed*, as the qvm.prefs module does (so memory "400" against 400 changes on every
 *   run); a property at its default compares as "*default*", and setting "*default*" resets it.
 * - netvm: the new one must provide network (a traceback in real life); Qubes refuses to attach a *running* qube
 *   to a *halted* netvm ("Cannot dynamically attach to stopped qube X", qubes/vm/mix/net.py), also when a reset
 *   to the default would; starting a qube starts its netvm first, as qubesd does.
 * - shutdown refuses a netvm with running clients unless forced; remove shuts the qube down first (forced, as
 *   the qvm.remove module does) and is refused while any qube, or the system's default_netvm, uses it as netvm or
 *   template ("Domain is in use", qubes/app.py).
 * - features are strings; qvm-features prints a feature and exits 1 when it is not set.
 *
 * Every mutating command is recorded, so a test can assert that a second run runs none. The state serializes to
 * JSON, so the stand-in qvm-* tools (qvm-tools.ts) that scripts run see and change the same dom0.
 *
 * dom0's own files (file.managed, file.absent in a dom0 state) are modelled as Salt's file states are documented:
 * file.managed with `contents` adds a final newline if missing (contents_newline), writes only when contents, mode
 * or owner differ, and refuses a missing parent directory unless makedirs; file.absent removes only what exists.
 */
export type Power = 'Halted' | 'Running';

export interface FakeQube {
  klass: 'TemplateVM' | 'AppVM';
  /** Properties set explicitly; an absent one is at its default. */
  prefs: Record<string, unknown>;
  features: Record<string, string>;
  packages: Record<string, string>;
  /** What each installed package (of a formula file) depends on: apt removes it with any of them. */
  depends?: Record<string, string[]>;
  /** qvm-firewall's rules in raw form, first to last; absent: Qubes' default, one rule `action=accept`. */
  firewall?: string[];
  /** systemd units enabled in a template (the Debian daemons' postinsts enable theirs). */
  enabledUnits?: string[];
  power: Power;
  /** Files file.managed wrote inside the qube (a template's runtime drop-ins): path → contents. */
  files?: Record<string, string>;
}

/** The unit each Debian daemon's package ships and its postinst enables (deb-systemd-helper enable). */
export const DEBIAN_UNITS: Readonly<Record<string, string>> = { tor: 'tor.service', tinyproxy: 'tinyproxy.service', i2pd: 'i2pd.service', i2p: 'i2p.service' };

/** A package file of the formula (salt://…): its name, version and Depends. */
export interface SaltPackageFile {
  readonly package: string;
  readonly version: string;
  readonly depends?: readonly string[];
}

export interface DomFile {
  readonly contents: string;
  readonly mode: string;
  readonly user: string;
  readonly group: string;
}

const INT_PREFS = new Set(['memory', 'maxmem', 'vcpus', 'qrexec-timeout']);
const BOOL_PREFS = new Set(['provides-network', 'autostart', 'include-in-backups', 'template-for-dispvms', 'debug']);

/** A refusal by qubesd or a tool, with the message the real one prints. */
export class QubesError extends Error {}

interface State {
  qubes: Record<string, FakeQube>;
  commands: string[];
  repos: Record<string, string[]>;
  saltFiles: Record<string, SaltPackageFile>;
  /** Global properties (qubes-prefs). */
  global: Record<string, string>;
}

export class FakeDom0 {
  qubes = new Map<string, FakeQube>();
  commands: string[] = [];
  /** Templates qvm-template could install, by repository id (the ids of dom0's qubes-repo-templates). */
  repos = new Map<string, Set<string>>([
    ['qubes-templates-itl', new Set()],
    ['qubes-templates-itl-testing', new Set()],
    ['qubes-templates-community', new Set()],
    ['qubes-templates-community-testing', new Set()],
  ]);
  /** Enabled unless a command says otherwise (`enabled = 1` in dom0's repo file): the ITL templates only. */
  readonly enabledRepos: ReadonlySet<string> = new Set(['qubes-templates-itl']);
  /** Package files reachable as salt://… */
  saltFiles = new Map<string, SaltPackageFile>();
  /** qubes-prefs: default_netvm is what a qube's netvm is when it was never set. */
  global: Record<string, string> = { default_netvm: 'sys-firewall' };
  /** dom0's own files that states manage, by absolute path (not seen by the stand-in tools: no script touches them). */
  readonly files = new Map<string, DomFile>();
  /** Directories that exist in dom0 (a Qubes 4.x dom0 has /etc/qubes/policy.d). */
  readonly dirs = new Set<string>(['/etc', '/etc/qubes', '/etc/qubes/policy.d']);

  addQube(name: string, klass: FakeQube['klass'], prefs: Record<string, unknown> = {}, power: Power = 'Halted'): void {
    this.qubes.set(name, { klass, prefs: { ...prefs }, features: {}, packages: {}, power });
  }

  toJSON(): State {
    return {
      qubes: Object.fromEntries(this.qubes),
      commands: this.commands,
      repos: Object.fromEntries([...this.repos].map(([k, v]) => [k, [...v]])),
      saltFiles: Object.fromEntries(this.saltFiles),
      global: this.global,
    };
  }

  static fromJSON(s: State): FakeDom0 {
    const d = new FakeDom0();
    d.load(s);
    return d;
  }

  /** Replace this dom0's state with `s` (after a script changed it through the stand-in tools). */
  load(s: State): void {
    this.qubes = new Map(Object.entries(s.qubes));
    this.commands = s.commands;
    this.repos = new Map(Object.entries(s.repos).map(([k, v]) => [k, new Set(v)]));
    this.saltFiles = new Map(Object.entries(s.saltFiles));
    this.global = s.global;
  }

  private run(cmd: string): void {
    this.commands.push(cmd);
  }

  get(name: string): FakeQube {
    const q = this.qubes.get(name);
    if (q === undefined) throw new QubesError(`no such domain: '${name}'`);
    return q;
  }

  has(name: string): boolean {
    return this.qubes.has(name);
  }

  isRunning(name: string): boolean {
    return this.get(name).power === 'Running';
  }

  /** The netvm a qube uses: its own setting, else the system default; '' for none. */
  netvmOf(name: string): string {
    const q = this.get(name);
    if ('netvm' in q.prefs) return String(q.prefs['netvm'] ?? '');
    return q.klass === 'TemplateVM' ? '' : (this.global['default_netvm'] ?? '');
  }

  /** How `qvm-prefs` prints a property: its value, or nothing for none. */
  effectivePref(name: string, key: string): string {
    if (key === 'netvm') return this.netvmOf(name);
    const v = this.get(name).prefs[key];
    return v === undefined || v === null ? '' : String(v);
  }

  /** Qubes running with `name` as their netvm. */
  runningClients(name: string): string[] {
    return [...this.qubes.keys()].filter((n) => n !== name && this.netvmOf(n) === name && this.isRunning(n));
  }

  /** Make `name` installable from repository `repo`. */
  offerTemplate(repo: string, name: string): void {
    const r = this.repos.get(repo);
    if (r === undefined) throw new Error(`fake dom0: no repository ${repo}`);
    r.add(name);
  }

  templateInstalled(name: string, fromrepo?: string, pool?: string): void {
    const q = this.qubes.get(name);
    if (q?.klass === 'TemplateVM') return;
    this.run(`qvm-template install --quiet${fromrepo === undefined ? '' : ` --repoid=${fromrepo}`}${pool === undefined ? '' : ` --pool=${pool}`} ${name}`);
    if (q !== undefined) {
      throw new QubesError(`qvm.template_installed: ${name} exists but is not a template (qvm-template skips it as "already installed"; the state fails)`);
    }
    const searched = fromrepo === undefined ? [...this.enabledRepos] : [fromrepo];
    if (!searched.some((r) => this.repos.get(r)?.has(name))) throw new QubesError(`qvm-template: no template ${name} in ${searched.join(', ')}`);
    this.addQube(name, 'TemplateVM');
  }

  clone(source: string, name: string): void {
    if (this.qubes.has(name)) return;
    const src = this.get(source);
    this.run(`qvm-clone ${source} ${name}`);
    this.qubes.set(name, { klass: src.klass, prefs: { ...src.prefs }, features: { ...src.features }, packages: { ...src.packages }, power: 'Halted' });
  }

  present(name: string, opts: Record<string, unknown>): void {
    if (this.qubes.has(name)) return;
    if (opts['label'] === undefined) throw new QubesError('qvm-create: error: --label option is mandatory');
    const template = opts['template'];
    if (typeof template !== 'string' || this.qubes.get(template)?.klass !== 'TemplateVM') {
      throw new QubesError(`qvm-create: no such template: ${String(template)}`);
    }
    this.run(`qvm-create --template ${template} --label ${String(opts['label'])}${opts['mem'] !== undefined ? ` --property memory=${String(opts['mem'])}` : ''} ${name}`);
    this.addQube(name, 'AppVM', { template, label: opts['label'], memory: typeof opts['mem'] === 'number' ? opts['mem'] : 400 });
  }

  /** The qvm.prefs module: compare as typed (a default compares as "*default*"), set what differs. */
  prefs(name: string, prefs: Record<string, unknown>): void {
    const q = this.get(name);
    for (const [rawKey, value] of Object.entries(prefs)) {
      const key = rawKey.replace(/_/g, '-');
      const current = key in q.prefs ? q.prefs[key] : '*default*';
      if (current === value || (key === 'netvm' && (value === 'none' || value === '') && current === '')) continue;
      this.setPref(name, key, value);
    }
  }

  /** One property change through qubesd, with its checks; `*default*` resets. */
  setPref(name: string, key: string, value: unknown): void {
    const q = this.get(name);
    if (key === 'netvm') {
      const reset = value === '*default*';
      const next = reset ? (q.klass === 'TemplateVM' ? '' : (this.global['default_netvm'] ?? '')) : value === 'none' || value === '' ? '' : String(value);
      if (next !== '') {
        const netvm = this.get(next);
        if (netvm.prefs['provides-network'] !== true) throw new QubesError(`Traceback: netvm ${next} does not provide network`);
        if (q.power === 'Running' && netvm.power !== 'Running') throw new QubesError(`Cannot dynamically attach to stopped qube ${next}`);
      }
      this.run(reset ? `qvm-prefs --default ${name} netvm` : `qvm-prefs ${name} netvm ${next === '' ? "''" : next}`);
      if (reset) delete q.prefs['netvm'];
      else q.prefs['netvm'] = next;
      return;
    }
    if (key === 'template' && this.qubes.get(String(value))?.klass !== 'TemplateVM') throw new QubesError(`no such template ${String(value)}`);
    this.run(`qvm-prefs ${name} ${key} ${String(value)}`);
    if (value === '*default*') delete q.prefs[key];
    // Stored as Qubes stores it: so "400" differs from the stored 400 on every run.
    else q.prefs[key] = INT_PREFS.has(key) ? Number(value) : BOOL_PREFS.has(key) ? value === true || value === 'True' || value === 'true' : value;
  }

  getFeature(name: string, feature: string): string | undefined {
    return this.get(name).features[feature];
  }

  setFeature(name: string, feature: string, value: string): void {
    const q = this.get(name);
    if (q.features[feature] !== value) {
      this.run(`qvm-features ${name} ${feature} ${value}`);
      q.features[feature] = value;
    }
  }

  unsetFeature(name: string, feature: string): void {
    const q = this.get(name);
    if (feature in q.features) {
      this.run(`qvm-features --unset ${name} ${feature}`);
      delete q.features[feature];
    }
  }

  /** qvm-start (through qubesd): the netvm chain first; a running qube is an error for the tool, skipped by qvm.start. */
  start(name: string): void {
    const q = this.get(name);
    if (q.power === 'Running') throw new QubesError(`domain ${name} is already running`);
    const netvm = this.netvmOf(name);
    if (netvm !== '' && !this.isRunning(netvm)) this.start(netvm);
    this.run(`qvm-start ${name}`);
    q.power = 'Running';
  }

  shutdown(name: string, force: boolean): void {
    const q = this.get(name);
    if (q.power === 'Halted') return;
    const clients = this.runningClients(name);
    if (clients.length > 0 && !force) throw new QubesError(`There are other VMs connected to this VM: ${clients.join(', ')}`);
    this.run(`qvm-shutdown --wait${force ? ' --force' : ''} ${name}`);
    q.power = 'Halted';
  }

  /** qvm.absent: skip a missing qube; shut it down (forced), then qvm-remove, which qubesd refuses while in use. */
  absent(name: string): void {
    if (!this.qubes.has(name)) return;
    this.shutdown(name, true);
    const users = [...this.qubes.entries()].filter(([n, q]) => n !== name && (q.prefs['netvm'] === name || q.prefs['template'] === name || (!('netvm' in q.prefs) && q.klass !== 'TemplateVM' && this.global['default_netvm'] === name)));
    const global = Object.entries(this.global).filter(([, v]) => v === name);
    if (users.length > 0 || global.length > 0) {
      throw new QubesError(`Domain is in use: '${name}'; see 'journalctl -u qubesd -e' in dom0 for details (used by ${[...users.map(([n]) => n), ...global.map(([k]) => `@GLOBAL:${k}`)].join(', ')})`);
    }
    this.run(`qvm-remove --force ${name}`);
    this.qubes.delete(name);
  }

  /** qvm-firewall's rules of a qube (raw form). */
  firewallRules(name: string): string[] {
    return [...(this.get(name).firewall ?? ['action=accept'])];
  }

  /** qvm-firewall VM add [--before N] RULE / del RULE: Admin API firewall.Set with the new list. */
  setFirewall(name: string, rules: readonly string[], command: string): void {
    this.get(name).firewall = [...rules];
    this.run(command);
  }

  /** pkg.installed inside a template (salt-ssh through the management disposable). */
  pkgInstalled(template: string, name: string, version: string, depends?: readonly string[]): void {
    const q = this.get(template);
    if (q.packages[name] === version) return;
    // dpkg -i (Salt's `sources`) does not resolve dependencies: a missing one fails the install, the old stays.
    const missing = (depends ?? []).filter((d) => !(d in q.packages));
    if (missing.length > 0) throw new QubesError(`dpkg: dependency problems prevent configuration of ${name}: depends on ${missing.join(', ')}; however: not installed`);
    this.run(`${template}: install ${name}=${version}`);
    const fresh = !(name in q.packages);
    q.packages[name] = version;
    if (depends !== undefined) (q.depends ??= {})[name] = [...depends];
    // A first install enables the daemon's unit; an upgrade keeps an admin's disabling (deb-systemd-helper).
    const unit = DEBIAN_UNITS[name];
    if (fresh && unit !== undefined && !(q.enabledUnits ??= []).includes(unit)) q.enabledUnits.push(unit);
  }

  /** service.disabled inside a template: `systemctl disable` when the unit is enabled; a unit not installed fails. */
  serviceDisabled(template: string, unit: string): void {
    const q = this.get(template);
    const owner = Object.entries(DEBIAN_UNITS).find(([, u]) => u === unit)?.[0];
    if (owner === undefined || !(owner in q.packages)) throw new QubesError(`The named service ${unit} is not available`);
    if (!(q.enabledUnits ?? []).includes(unit)) return;
    this.run(`${template}: systemctl disable ${unit}`);
    q.enabledUnits = q.enabledUnits!.filter((u) => u !== unit);
  }

  /** file.managed inside a template: writes only when the contents differ, as Salt does. */
  templateFileManaged(template: string, path: string, contents: string): void {
    const q = this.get(template);
    q.files ??= {};
    if (q.files[path] === contents) return;
    this.run(`${template}: write ${path}`);
    q.files[path] = contents;
  }

  /** pkg.purged inside a template: a package that is not installed changes nothing. */
  pkgPurged(template: string, name: string): void {
    const q = this.get(template);
    if (!(name in q.packages)) return;
    this.run(`${template}: purge ${name}`);
    delete q.packages[name];
    if (DEBIAN_UNITS[name] !== undefined) q.enabledUnits = (q.enabledUnits ?? []).filter((u) => u !== DEBIAN_UNITS[name]);
    // apt-get purge removes every installed package that depends on it ("The following packages will be REMOVED").
    for (const [pkg, deps] of Object.entries(q.depends ?? {})) {
      if (pkg in q.packages && deps.includes(name)) {
        this.run(`${template}: remove ${pkg} (depends on ${name})`);
        delete q.packages[pkg];
        delete q.depends![pkg];
      }
    }
  }

  /** file.managed with `contents` in dom0. */
  fileManaged(path: string, f: { contents: string; mode: string; user: string; group: string; makedirs?: boolean }): void {
    if (!path.startsWith('/')) throw new Error(`file.managed: ${path} is not an absolute path`);
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    if (!this.dirs.has(parent) && f.makedirs !== true) throw new Error(`file.managed: parent directory ${parent} does not exist`);
    const contents = f.contents.endsWith('\n') ? f.contents : `${f.contents}\n`;
    const want: DomFile = { contents, mode: f.mode, user: f.user, group: f.group };
    const have = this.files.get(path);
    if (have !== undefined && have.contents === want.contents && have.mode === want.mode && have.user === want.user && have.group === want.group) return;
    this.run(`write ${path} (${want.mode} ${want.user}:${want.group})`);
    this.files.set(path, want);
  }

  /** file.absent in dom0. */
  fileAbsent(path: string): void {
    if (!this.files.has(path)) return;
    this.run(`rm ${path}`);
    this.files.delete(path);
  }
}
