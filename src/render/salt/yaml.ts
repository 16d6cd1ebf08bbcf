/**
 * Salt states are rendered as data and dumped with js-yaml, never assembled from string templates: a value can
 * then never break out of its place in the YAML, whatever it contains (and validated config keeps it plain).
 */
import { dump } from 'js-yaml';

export function slsText(header: readonly string[], data: unknown): string {
  const comment = header.map((line) => (line === '' ? '#' : `# ${line}`)).join('\n');
  return `${comment}\n\n${dump(data, { lineWidth: -1, noRefs: true })}`;
}
