/**
 * The Debian changelog of the generated package (deb-changelog(5)): one entry, for the version being built,
 * dated from SOURCE_DATE_EPOCH so the same inputs give the same bytes. The package is native (its version has
 * no Debian revision), so it is installed as /usr/share/doc/<package>/changelog.gz, compressed like gzip -9n.
 */
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** RFC 5322 date in UTC, as dpkg-parsechangelog expects: `Tue, 14 Nov 2023 22:13:20 +0000`. */
export function changelogDate(epochSeconds: number): string {
  if (!Number.isInteger(epochSeconds) || epochSeconds < 0) throw new Error(`changelog: SOURCE_DATE_EPOCH ${epochSeconds} is not a whole number of seconds`);
  const d = new Date(epochSeconds * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

export interface ChangelogEntry {
  readonly package: string;
  readonly version: string;
  readonly maintainer: string;
  readonly sourceDateEpoch: number;
  /** Bullet items, one line each. */
  readonly changes: readonly string[];
}

export function renderChangelog(e: ChangelogEntry): string {
  return (
    `${e.package} (${e.version}) unstable; urgency=medium\n\n` +
    e.changes.map((c) => `  * ${c}\n`).join('') +
    `\n -- ${e.maintainer}  ${changelogDate(e.sourceDateEpoch)}\n`
  );
}
