/**
 * Maps a config path (`qubes.clients.2`) to the line and column where the YAML file says it, so errors can
 * point at the source. Walks js-yaml's event stream; pure.
 */
import { EVENT_ID, getScalarValue, parseEvents } from 'js-yaml';

export interface Position {
  readonly line: number;
  readonly column: number;
}

type Frame =
  | { kind: 'map'; path: string; expectKey: boolean; key: string }
  | { kind: 'seq'; path: string; index: number };

export function positionsOf(source: string): Map<string, Position> {
  const out = new Map<string, Position>();
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') lineStarts.push(i + 1);
  const at = (offset: number): Position => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo]! + 1 };
  };
  let events;
  try {
    events = parseEvents(source, { maxDepth: 32 });
  } catch {
    return out;
  }
  const stack: Frame[] = [];
  const join = (base: string, part: string | number): string => (base === '' ? String(part) : `${base}.${part}`);
  /** Where the next node sits, and records it. Returns its path. */
  const place = (offset: number): string | undefined => {
    const top = stack[stack.length - 1];
    if (top === undefined) return '';
    if (top.kind === 'seq') {
      const p = join(top.path, top.index++);
      if (!out.has(p)) out.set(p, at(offset));
      return p;
    }
    if (top.expectKey) return undefined;
    top.expectKey = true;
    return join(top.path, top.key);
  };
  for (const ev of events) {
    switch (ev.type) {
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const p = place(ev.start);
        if (p === undefined) return out; // a complex key: give up on positions, nothing depends on them
        stack.push(ev.type === EVENT_ID.MAPPING ? { kind: 'map', path: p, expectKey: true, key: '' } : { kind: 'seq', path: p, index: 0 });
        break;
      }
      case EVENT_ID.SCALAR: {
        const top = stack[stack.length - 1];
        if (top?.kind === 'map' && top.expectKey) {
          top.key = getScalarValue(source, ev);
          top.expectKey = false;
          out.set(join(top.path, top.key), at(ev.valueStart));
        } else {
          place(ev.valueStart);
        }
        break;
      }
      case EVENT_ID.ALIAS:
        place(ev.anchorStart);
        break;
      case EVENT_ID.POP:
        stack.pop();
        break;
      default:
        break;
    }
  }
  return out;
}
