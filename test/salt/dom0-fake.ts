/**
 * A small, honest stand-in for dom0's qvm-* tools and a template's package manager, for applying our rendered
 * states without Qubes. It models only what the real state modules are documented (FIELD-NOTES) to do, and
 * qvm.template_installed as qubes-mgmt-salt-dom0-qvm release4.3 (v4.3.6) does it: "installed" is `qvm-check
 * --template` (a qube of that name that is a TemplateVM), else `qvm-template install --quiet [--repoid=FROMREPO]
 * NAME`, searching dom0's default-enabled repositories (only qubes-templates-itl, where Qubes' own Fedora and
 * Debian templates are) or just FROMREPO; a non-template qube of that name makes qvm-template skip ("already
 * installed") and the state fail. `present`/`clone` act only when the qube is missing; `prefs` compares values *as typed*
 * (so memory "400" against 400 changes on every run, as the real one does); a netvm must provide network;
 * qvm-create refuses a missing label. Every mutating command is recorded, so a test can assert that a second run
 * runs none.
 */
export interface FakeQube {
  klass: 'TemplateVM' | 'AppVM';
  prefs: Record<string, unknown>;
  features: Record<string, string>;
  packages: Map<string, string>;
}

const INT_PREFS = new Set(['memory', 'maxmem', 'vcpus', 'qrexec-timeout']);
const BOOL_PREFS = new Set(['provides-network', 'autostart', 'include-in-backups', 'template-for-dispvms', 'debug']);

export class FakeDom0 {
  readonly qubes = new Map<string, FakeQube>();
  readonly commands: string[] = [];
  /** Templates qvm-template could install, by repository id (the ids of dom0's qubes-repo-templates). */
  readonly repos = new Map<string, Set<string>>([
    ['qubes-templates-itl', new Set()],
    ['qubes-templates-itl-testing', new Set()],
    ['qubes-templates-community', new Set()],
    ['qubes-templates-community-testing', new Set()],
  ]);
  /** Enabled unless a command says otherwise (`enabled = 1` in dom0's repo file): the ITL templates only. */
  readonly enabledRepos: ReadonlySet<string> = new Set(['qubes-templates-itl']);
  /** Files reachable as salt://… */
  readonly saltFiles = new Map<string, { package: string; version: string }>();

  addQube(name: string, klass: FakeQube['klass'], prefs: Record<string, unknown> = {}): void {
    this.qubes.set(name, { klass, prefs: { ...prefs }, features: {}, packages: new Map() });
  }

  private run(cmd: string): void {
    this.commands.push(cmd);
  }

  private get(name: string): FakeQube {
    const q = this.qubes.get(name);
    if (q === undefined) throw new Error(`qvm: no such domain: '${name}'`);
    return q;
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
      throw new Error(`qvm.template_installed: ${name} exists but is not a template (qvm-template skips it as "already installed"; the state fails)`);
    }
    const searched = fromrepo === undefined ? [...this.enabledRepos] : [fromrepo];
    if (!searched.some((r) => this.repos.get(r)?.has(name))) throw new Error(`qvm-template: no template ${name} in ${searched.join(', ')}`);
    this.addQube(name, 'TemplateVM');
  }

  clone(source: string, name: string): void {
    if (this.qubes.has(name)) return;
    const src = this.get(source);
    this.run(`qvm-clone ${source} ${name}`);
    this.qubes.set(name, { klass: src.klass, prefs: { ...src.prefs }, features: { ...src.features }, packages: new Map(src.packages) });
  }

  present(name: string, opts: Record<string, unknown>): void {
    if (this.qubes.has(name)) return;
    if (opts['label'] === undefined) throw new Error('qvm-create: error: --label option is mandatory');
    const template = opts['template'];
    if (typeof template !== 'string' || this.qubes.get(template)?.klass !== 'TemplateVM') {
      throw new Error(`qvm-create: no such template: ${String(template)}`);
    }
    this.run(`qvm-create --template ${template} --label ${String(opts['label'])}${opts['mem'] !== undefined ? ` --property memory=${String(opts['mem'])}` : ''} ${name}`);
    this.addQube(name, 'AppVM', { template, label: opts['label'], memory: typeof opts['mem'] === 'number' ? opts['mem'] : 400, netvm: 'sys-firewall', 'provides-network': false });
  }

  prefs(name: string, prefs: Record<string, unknown>): void {
    const q = this.get(name);
    for (const [rawKey, value] of Object.entries(prefs)) {
      const key = rawKey.replace(/_/g, '-');
      if (key === 'netvm' && value !== '' && value !== 'none') {
        const netvm = this.get(String(value));
        if (netvm.prefs['provides-network'] !== true) throw new Error(`Traceback: netvm ${String(value)} does not provide network`);
      }
      if (key === 'template' && this.qubes.get(String(value))?.klass !== 'TemplateVM') throw new Error(`no such template ${String(value)}`);
      // Compared as typed, stored as Qubes stores it: so "400" differs from the stored 400 on every run.
      if (q.prefs[key] !== value) {
        this.run(`qvm-prefs ${name} ${key} ${String(value)}`);
        q.prefs[key] = INT_PREFS.has(key) ? Number(value) : BOOL_PREFS.has(key) ? value === true || value === 'True' || value === 'true' : value;
      }
    }
  }

  setFeature(name: string, feature: string, value: string): void {
    const q = this.get(name);
    if (q.features[feature] !== value) {
      this.run(`qvm-features ${name} ${feature} ${value}`);
      q.features[feature] = value;
    }
  }

  /** pkg.installed inside a template (salt-ssh through the management disposable). */
  pkgInstalled(template: string, name: string, version: string): void {
    const q = this.get(template);
    if (q.packages.get(name) === version) return;
    this.run(`${template}: install ${name}=${version}`);
    q.packages.set(name, version);
  }

  /** pkg.purged inside a template: a package that is not installed changes nothing. */
  pkgPurged(template: string, name: string): void {
    const q = this.get(template);
    if (!q.packages.has(name)) return;
    this.run(`${template}: purge ${name}`);
    q.packages.delete(name);
  }
}
