/**
 * Warnings: configs that build, but that a user should change. Each is a small pure function like the rules in
 * rules.ts, returning issues with the same shape (a field, a message ending in a fix); `validate` and `build`
 * print them and go on (exit 0).
 */
import type { ConfigIssue } from './rules.ts';
import type { GatewayConfig } from './schema.ts';

type Warning = (c: GatewayConfig) => ConfigIssue[];

/** Debian releases Qubes no longer supports as templates, with the date support ended. */
const UNSUPPORTED_RELEASES: Readonly<Partial<Record<GatewayConfig['debian']['release'], string>>> = {
  // Qubes ends a Debian template's support with Debian's regular support (not LTS): June 2026 for Debian 12,
  // the month Qubes OS 4.2 reached its own end of life (2026-06-21).
  bookworm: 'Debian 12 (bookworm) templates have been unsupported by Qubes OS since June 2026',
};

export const supportedRelease: Warning = (c) => {
  const why = UNSUPPORTED_RELEASES[c.debian.release];
  return why === undefined
    ? []
    : [
        {
          path: ['debian', 'release'],
          input: c.debian.release,
          message:
            `is end of life: ${why}. Fix: install debian-13-minimal in dom0 (qvm-template install debian-13-minimal), ` +
            'then set debian.release: trixie and qubes.sourceTemplate: debian-13-minimal',
        },
      ];
};

/** Qubes' own Debian templates carry the major release in their name: it should agree with debian.release. */
const RELEASE_OF_MAJOR: Readonly<Record<string, GatewayConfig['debian']['release']>> = { '12': 'bookworm', '13': 'trixie' };

export const templateMatchesRelease: Warning = (c) => {
  const major = /^debian-(\d+)(?:-|$)/.exec(c.qubes.sourceTemplate)?.[1];
  const named = major === undefined ? undefined : RELEASE_OF_MAJOR[major];
  if (named === undefined || named === c.debian.release) return [];
  return [
    {
      path: ['debian', 'release'],
      input: c.debian.release,
      message: `does not match qubes.sourceTemplate ${c.qubes.sourceTemplate} (Debian ${major}, ${named}). Fix: set debian.release: ${named}, or clone a template of ${c.debian.release}`,
    },
  ];
};

export const WARNINGS: readonly Warning[] = [supportedRelease, templateMatchesRelease];

export function checkWarnings(c: GatewayConfig): ConfigIssue[] {
  return WARNINGS.flatMap((w) => w(c));
}
