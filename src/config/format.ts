/**
 * Wording of config errors for people: one header line, then one line per issue,
 * `gateway.yaml:5:11 qubes.gateway: "sys i2p" is not a valid qube name ... Fix: ...`.
 */
import type { ConfigIssue } from './rules.ts';
import { positionsOf, type Position } from './positions.ts';

const MAX_SHOWN_VALUE = 60;

export function showValue(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (value === null || typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value)) text = 'a list';
  else if (typeof value === 'object') text = 'a mapping';
  else text = String(value);
  return text.length > MAX_SHOWN_VALUE ? `${text.slice(0, MAX_SHOWN_VALUE - 15)}…" (${text.length} characters)` : text;
}

export function formatIssues(issues: readonly ConfigIssue[], fileName: string, source?: string): string {
  const header = `${fileName}: the gateway config is not valid (${issues.length} problem${issues.length === 1 ? '' : 's'}); nothing was written.`;
  return [header, ...issueLines(issues, fileName, source)].join('\n');
}

/** Warnings: the config is valid and builds, but should change. Same line format as errors. */
export function formatWarnings(warnings: readonly ConfigIssue[], fileName: string, source?: string): string {
  return issueLines(warnings, fileName, source)
    .map((l) => `warning: ${l}`)
    .join('\n');
}

function issueLines(issues: readonly ConfigIssue[], fileName: string, source?: string): string[] {
  const positions = source !== undefined ? positionsOf(source) : new Map<string, Position>();
  const lines: string[] = [];
  for (const issue of issues) {
    const key = issue.path.join('.');
    // A key that is missing has no place of its own: point at the nearest enclosing one (the mapping that lacks it).
    let pos: Position | undefined;
    for (let n = issue.path.length; pos === undefined && n > 0; n--) pos = positions.get(issue.path.slice(0, n).join('.'));
    const where = pos !== undefined ? `${fileName}:${pos.line}:${pos.column}` : fileName;
    const field = key === '' ? 'the file' : key;
    const value = 'input' in issue && issue.input !== undefined && typeof issue.input !== 'object' ? `${showValue(issue.input)} ` : '';
    lines.push(`${where} ${field}: ${value}${issue.message}`);
  }
  return lines;
}
