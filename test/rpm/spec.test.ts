/**
 * The spec reader (src/render/rpm/spec.ts): it must read the spec the way rpmbuild does for the values both
 * packages share, and refuse what it cannot read that way instead of letting the two packages drift apart.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../../src/render/rpm/spec.ts';
import { SPEC } from './dom0.ts';

const text = readFileSync(SPEC, 'utf8');

describe('parseSpec', () => {
  it('reads the project spec: requirements, one-line summary, scriptlets without the trailing newline rpmbuild strips', () => {
    const s = parseSpec(text);
    expect(s.requires).toEqual([{ name: 'qubes-mgmt-salt' }, { name: 'qubes-mgmt-salt-dom0' }, { name: 'qubes-mgmt-salt-dom0-qvm' }]);
    expect(s.summary).not.toMatch(/\n/);
    expect(Object.keys(s.scripts).sort()).toEqual(['post', 'preun']);
    expect(s.scripts.post).toMatch(/^if .*\nfi$/s);
    expect(s.scripts.preun).toMatch(/^if .*\nfi$/s);
    expect(s.changelog).toHaveLength(1);
  });

  it('refuses macros in the values it copies (rpmbuild would expand them, this reader would not)', () => {
    expect(() => parseSpec(text.replace(/^Summary: .*$/m, 'Summary: the %{name} formula'))).toThrow(/Summary uses a macro/);
    expect(() => parseSpec(text.replace('echo "Details:', 'echo "%{name} Details:'))).toThrow(/%post uses a macro/);
    expect(() => parseSpec(text.replace('Installing this package', 'Installing %{name}'))).toThrow(/%description uses a macro/);
  });

  it('refuses qualified tags like Requires(post): the reader would drop them', () => {
    expect(() => parseSpec(text.replace('Requires:       qubes-mgmt-salt\n', 'Requires(post): qubes-mgmt-salt\n'))).toThrow(
      /qualified tags are not supported/,
    );
  });
});
